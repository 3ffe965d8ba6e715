//! `config:` — the configuration layer's content, templates, secrets, accounts, and the
//! image's runtime settings.

use super::Reader;
use crate::recipe::decode::{Fields, Result};
use crate::recipe::schema::*;
use crate::recipe::shape;
use crate::recipe::values::*;
use crate::recipe::yaml::Node;

impl Reader {
    pub(super) fn config(&self, node: &Node) -> Result<ConfigSpec> {
        let f = self.ctx.map(node, &shape::CONFIG)?;
        let mut c = ConfigSpec { content: self.content(&f)?, ..ConfigSpec::default() };
        if let Some(n) = f.get("templates") {
            for item in self.ctx.seq(n, "`templates`")? {
                let t = self.ctx.map(item, &shape::TEMPLATE)?;
                c.templates.push(TemplateSpec {
                    src: self.interp(t.required("src")?, "`src`")?,
                    to: self.abs_path(t.required("to")?, "`to`")?,
                    mode: self.mode_field(&t)?,
                    owner: self.owner_field(&t)?,
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("secrets") {
            for item in self.ctx.seq(n, "`secrets`")? {
                let s = self.ctx.map(item, &shape::SECRET)?;
                let source = match (s.get("env"), s.get("file")) {
                    (Some(e), None) => SecretSource::Env(self.ctx.str(e, "`env`")?),
                    (None, Some(p)) => SecretSource::File(self.interp(p, "`file`")?),
                    _ => {
                        return Err(self.ctx.err(
                            item,
                            "a secret needs exactly one of `env` (a variable name) or `file` (a local path)",
                        ));
                    }
                };
                c.secrets.push(SecretSpec {
                    source,
                    to: self.abs_path(s.required("to")?, "`to`")?,
                    mode: self.mode_field(&s)?.unwrap_or(0o400),
                    owner: self.owner_field(&s)?,
                    loc: self.ctx.loc(item),
                });
            }
        }
        self.accounts(&f, &mut c)?;
        self.runtime(&f, &mut c)?;
        Ok(c)
    }

    /// `groups` and `users`.
    fn accounts(&self, f: &Fields<'_>, c: &mut ConfigSpec) -> Result<()> {
        if let Some(n) = f.get("groups") {
            for item in self.ctx.seq(n, "`groups`")? {
                let g = self.ctx.map(item, &shape::GROUP)?;
                c.groups.push(GroupSpec {
                    name: self.account_name(g.required("name")?)?,
                    gid: self.id(g.required("gid")?, "`gid`")?,
                    members: match g.get("members") {
                        None => Vec::new(),
                        Some(m) => self
                            .ctx
                            .seq(m, "`members`")?
                            .into_iter()
                            .map(|n| self.account_name(n))
                            .collect::<Result<_>>()?,
                    },
                    loc: self.ctx.loc(item),
                });
            }
        }
        if let Some(n) = f.get("users") {
            for item in self.ctx.seq(n, "`users`")? {
                let u = self.ctx.map(item, &shape::USER)?;
                let group = match u.get("group") {
                    None => None,
                    Some(g) => {
                        let s = self.ctx.str(g, "`group`")?;
                        Some(match s.parse::<u64>() {
                            Ok(_) => IdRef::Id(self.id(g, "`group`")?),
                            Err(_) => IdRef::Name(self.account_name(g)?),
                        })
                    }
                };
                c.users.push(UserSpec {
                    name: self.account_name(u.required("name")?)?,
                    uid: self.id(u.required("uid")?, "`uid`")?,
                    group,
                    groups: match u.get("groups") {
                        None => Vec::new(),
                        Some(m) => self
                            .ctx
                            .seq(m, "`groups`")?
                            .into_iter()
                            .map(|n| self.account_name(n))
                            .collect::<Result<_>>()?,
                    },
                    home: u.get("home").map(|n| self.account_path(n, "`home`")).transpose()?,
                    shell: u.get("shell").map(|n| self.account_path(n, "`shell`")).transpose()?,
                    gecos: match u.get("gecos") {
                        None => String::new(),
                        Some(n) => self.account_field(n, "`gecos`")?,
                    },
                    loc: self.ctx.loc(item),
                });
            }
        }
        Ok(())
    }

    /// The image's runtime settings: `user`, `entrypoint`, `cmd`, `env`, `workdir`, `ports`,
    /// `volumes`, `labels`, `stop_signal`, `healthcheck`.
    fn runtime(&self, f: &Fields<'_>, c: &mut ConfigSpec) -> Result<()> {
        if let Some(n) = f.get("user") {
            c.user = Some((self.ctx.str(n, "`user`")?, self.ctx.loc(n)));
        }
        let argv = |name: &str| -> Result<Option<Vec<String>>> {
            f.get(name)
                .map(|n| {
                    self.ctx
                        .argv(n, &format!("`{name}`"))?
                        .into_iter()
                        .map(|i| self.interp(i, &format!("`{name}`")))
                        .collect()
                })
                .transpose()
        };
        c.entrypoint = argv("entrypoint")?;
        c.cmd = argv("cmd")?;
        if let Some(n) = f.get("env") {
            for k in self.ctx.string_map(n, "`env`")?.into_keys() {
                if k.is_empty() || k.contains('=') {
                    return Err(self.ctx.err(n, format!("bad environment variable name `{k}`")));
                }
                let v = self.map_value(n, &k)?;
                c.env.insert(k, self.interp(v, "an `env` value")?);
            }
        }
        if let Some(n) = f.get("workdir") {
            c.workdir = Some(self.abs_path(n, "`workdir`")?);
        }
        if let Some(n) = f.get("ports") {
            for item in self.ctx.seq(n, "`ports`")? {
                let p = self.ctx.str(item, "a port")?;
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                if num.parse::<u16>().map_or(true, |n| n == 0) || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(self.ctx.err(
                        item,
                        format!("bad port `{p}`: expected `PORT` or `PORT/tcp|udp|sctp` with PORT in 1..=65535"),
                    ));
                }
                c.ports.push(format!("{num}/{proto}"));
            }
        }
        if let Some(n) = f.get("volumes") {
            for item in self.ctx.seq(n, "`volumes`")? {
                c.volumes.push(self.abs_path(item, "a volume")?);
            }
        }
        if let Some(n) = f.get("labels") {
            for k in self.ctx.string_map(n, "`labels`")?.into_keys() {
                let v = self.map_value(n, &k)?;
                c.labels.insert(k, self.interp(v, "a label")?);
            }
        }
        if let Some(n) = f.get("stop_signal") {
            let s = self.ctx.str(n, "`stop_signal`")?;
            if !(s.starts_with("SIG")
                && s.len() > 3
                && s[3..].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+'))
                && s.parse::<u8>().is_err()
            {
                return Err(self
                    .ctx
                    .err(n, format!("bad stop signal `{s}`: expected a name such as `SIGTERM` or a number")));
            }
            c.stop_signal = Some(s);
        }
        if let Some(n) = f.get("healthcheck") {
            c.healthcheck = Some(self.healthcheck(n)?);
        }
        Ok(())
    }

    pub(super) fn healthcheck(&self, node: &Node) -> Result<Healthcheck> {
        let f = self.ctx.map(node, &shape::HEALTHCHECK)?;
        let tn = f.required("test")?;
        let test = self
            .ctx
            .argv(tn, "`test`")?
            .into_iter()
            .map(|n| self.ctx.str(n, "each item of `test`"))
            .collect::<Result<Vec<String>>>()?;
        if !matches!(test.first().map(String::as_str), Some("CMD" | "CMD-SHELL" | "NONE")) {
            return Err(self.ctx.err(tn, "`test` must start with `CMD`, `CMD-SHELL` or `NONE` (as in Docker)"));
        }
        let dur = |name: &str| -> Result<Option<u64>> {
            f.get(name)
                .map(|n| {
                    let s = self.ctx.str(n, &format!("`{name}`"))?;
                    match duration_syntax(&s) {
                        None => Err(self.ctx.err(n, format!("bad duration `{s}`: expected e.g. `30s`, `1m30s`, `500ms`"))),
                        Some(ns) if ns > i64::MAX as u128 => Err(self.ctx.err(
                            n,
                            format!("duration `{s}` is longer than Go's time.Duration holds (about 292 years), which docker and podman read it into"),
                        )),
                        Some(ns) => Ok(ns as u64),
                    }
                })
                .transpose()
        };
        Ok(Healthcheck {
            interval_ns: dur("interval")?,
            timeout_ns: dur("timeout")?,
            start_period_ns: dur("start_period")?,
            start_interval_ns: dur("start_interval")?,
            retries: match f.get("retries") {
                None => None,
                Some(n) => {
                    let r = self.ctx.uint(n, "`retries`")?;
                    if r > i32::MAX as u64 {
                        return Err(self.ctx.err(n, format!("`retries` {r} is out of range (0 to {})", i32::MAX)));
                    }
                    Some(r)
                }
            },
            test,
        })
    }

    /// A field of `/etc/passwd` (`gecos`), with the recipe's variables put in: one line of
    /// `:`-separated fields, so no `:`, newline or other control character.
    pub(super) fn account_field(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.fixed(node, what)?;
        if let Some(c) = s.chars().find(|c| *c == ':' || c.is_control()) {
            return Err(self.ctx.err(
                node,
                format!(
                    "{what} `{}` holds {}; /etc/passwd and /etc/group are lines of `:`-separated fields",
                    s.escape_debug(),
                    describe_char(c)
                ),
            ));
        }
        Ok(s)
    }

    /// `home` or `shell`: an absolute path that is also a valid account field (no `,`
    /// either: the account writer refuses it in these fields).
    pub(super) fn account_path(&self, node: &Node, what: &str) -> Result<String> {
        let s = self.account_field(node, what)?;
        if s.contains(',') {
            return Err(self.ctx.err(node, format!("{what} `{s}` holds `,`, which account files do not take in it")));
        }
        self.abs_str(&s, &self.ctx.loc(node))
    }

    pub(super) fn account_name(&self, node: &Node) -> Result<String> {
        let s = self.fixed(node, "a user or group name")?;
        if valid_account_name(&s) {
            Ok(s)
        } else {
            Err(self.ctx.err(node, format!("bad user or group name `{}`: expected letters, digits, `_`, `-`, `.`, not starting with a digit or `-`", s.escape_debug())))
        }
    }
}
