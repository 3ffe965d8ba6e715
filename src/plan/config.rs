//! The configuration layer (content, templates, secrets, account files) and the image's
//! runtime config, merged over an image base's.

use super::error::Result;
use super::planner::{Planner, insert, origin};
use crate::model::digest::Digest;
use crate::oci::RunConfig;
use crate::recipe::{Diagnostic, SecretSource};
use crate::template;
use crate::tree::{Entry, Tree};
use std::collections::BTreeMap;

impl Planner<'_> {
    pub(super) fn config_tree(&mut self) -> Result<Tree> {
        let c = &self.recipe.config;
        let mut tree = Tree::default();
        self.content(&c.content, &mut tree)?;
        for t in &c.templates {
            let rel = self.interp(&t.src, &t.loc)?;
            let host = self.host_path(&rel, &t.loc, "template", true)?;
            let text = fs_err::read_to_string(&host)?;
            self.sources.borrow_mut().insert(rel.clone(), Digest::of(text.as_bytes()));
            let rendered = template::render(&rel, &text, &self.vars, &self.recipe.tags)
                .map_err(|e| Diagnostic::new(t.loc.clone(), e.to_string()))?;
            let (uid, gid) = self.owner(t.owner.as_ref())?;
            let mut e = Entry::bytes(
                rendered.into_bytes(),
                t.mode.unwrap_or(0o644),
                origin(&t.loc, &format!("template `{rel}`")),
            );
            (e.uid, e.gid) = (uid, gid);
            insert(&mut tree, self.dest(&t.to, &t.loc)?, e, &t.loc)?;
        }
        for s in &c.secrets {
            let bytes = match &s.source {
                SecretSource::Env(var) => std::env::var_os(var)
                    .ok_or_else(|| {
                        Diagnostic::new(
                            s.loc.clone(),
                            format!("secret for `{}` needs the environment variable `{var}`, which is not set", s.to),
                        )
                    })?
                    .into_encoded_bytes(),
                SecretSource::File(p) => {
                    let rel = self.interp(p, &s.loc)?;
                    fs_err::read(self.host_path(&rel, &s.loc, "secret file", true)?)?
                }
            };
            let (uid, gid) = self.owner(s.owner.as_ref())?;
            let mut e = Entry::bytes(bytes, s.mode, origin(&s.loc, "secret"));
            (e.uid, e.gid, e.secret) = (uid, gid, true);
            insert(&mut tree, self.dest(&s.to, &s.loc)?, e, &s.loc)?;
        }
        if !c.users.is_empty() || !c.groups.is_empty() {
            self.account_files(&mut tree)?;
        }
        Ok(tree)
    }

    pub fn run_config(&self) -> Result<RunConfig> {
        let c = &self.recipe.config;
        if let Some((user, loc)) = c.user.as_ref().filter(|_| !self.lenient) {
            let name = user.split(':').next().unwrap_or("");
            if !name.bytes().all(|b| b.is_ascii_digit()) && self.accounts.user(name).is_none() {
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!("`user: {user}` names a user the image does not have"),
                )
                .with_hint("declare it under `config.users`, or give a uid")
                .into());
            }
        }
        // An image base's settings carry over unless the recipe sets its own.
        let below = self.base.map(|p| p.config["config"].clone()).unwrap_or_default();
        let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        };
        let text = |k: &str| below[k].as_str().filter(|s| !s.is_empty()).map(String::from);
        let keys =
            |k: &str| -> Vec<String> { below[k].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };
        let mut env: BTreeMap<String, String> = strings(&below["Env"])
            .unwrap_or_default()
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        for (k, v) in &c.env {
            env.insert(k.clone(), self.interp(v, &self.recipe.loc)?);
        }
        env.entry("PATH".into())
            .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        let healthcheck = c.healthcheck.as_ref().map(|h| {
            let mut v = serde_json::json!({"Test": h.test});
            for (k, val) in [
                ("Interval", h.interval_ns),
                ("Timeout", h.timeout_ns),
                ("StartPeriod", h.start_period_ns),
                ("StartInterval", h.start_interval_ns),
                ("Retries", h.retries),
            ] {
                if let Some(val) = val {
                    v[k] = serde_json::json!(val);
                }
            }
            v
        });
        let union = |base: Vec<String>, own: &[String]| -> Vec<String> {
            let mut all = base;
            all.extend(own.iter().filter(|x| !all.contains(x)).cloned().collect::<Vec<_>>());
            all
        };
        let mut labels: BTreeMap<String, String> = below["Labels"]
            .as_object()
            .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        // The image's `org.opencontainers.image.*` annotations (the recipe's `metadata`) are
        // labels too, as docker and buildx write them: what `podman inspect`, `skopeo inspect`
        // and scanners read. The recipe's own `labels` win.
        labels.extend(
            self.recipe
                .annotations
                .iter()
                .filter(|(k, _)| k.starts_with("org.opencontainers.image."))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        labels.extend(c.labels.clone());
        // As in docker: a new entrypoint drops the base's command.
        let cmd = match (&c.entrypoint, &c.cmd) {
            (_, Some(cmd)) => Some(cmd.clone()),
            (Some(_), None) => None,
            (None, None) => strings(&below["Cmd"]),
        };
        Ok(RunConfig {
            user: c.user.as_ref().map(|(u, _)| u.clone()).or_else(|| text("User")),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint: c.entrypoint.clone().or_else(|| strings(&below["Entrypoint"])),
            cmd,
            workdir: c.workdir.clone().or_else(|| text("WorkingDir")),
            ports: union(keys("ExposedPorts"), &c.ports),
            volumes: union(keys("Volumes"), &c.volumes),
            labels,
            stop_signal: c.stop_signal.clone().or_else(|| text("StopSignal")),
            healthcheck: healthcheck.or_else(|| Some(below["Healthcheck"].clone()).filter(|h| h.is_object())),
        })
    }
}
