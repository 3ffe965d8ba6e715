//! `/etc/passwd`, `/etc/group` and `/etc/shadow`: read from the layers below, merged with
//! the recipe's users and groups, and written back in the same line formats `useradd` uses.
//! Existing lines are kept byte for byte; new accounts are appended in recipe order.

use crate::model::owner::IdRef;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The account database of an image.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// Shadow lines by user name, as found.
    pub shadow: Vec<String>,
    /// Whether the image had the files at all (a scratch image has none).
    pub existed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("user `{name}` is declared with uid {uid}, but the image already has `{name}` with uid {existing}")]
    UserClash { name: String, uid: u32, existing: u32 },
    #[error("uid {uid} of user `{name}` is already used by `{other}`")]
    UidTaken { name: String, uid: u32, other: String },
    #[error("group `{name}` is declared with gid {gid}, but the image already has `{name}` with gid {existing}")]
    GroupClash { name: String, gid: u32, existing: u32 },
    #[error("gid {gid} of group `{name}` is already used by `{other}`")]
    GidTaken { name: String, gid: u32, other: String },
    #[error("unknown user `{name}`; known users: {known}")]
    UnknownUser { name: String, known: String },
    #[error("unknown group `{name}`; known groups: {known}")]
    UnknownGroup { name: String, known: String },
    #[error("{what} `{value}` cannot go into the account files: it holds `:`, `,` or a control character")]
    BadField { what: &'static str, value: String },
}

/// Refuses what would break a line or field of passwd, group or shadow (the recipe reader
/// already refuses these with `file:line`; this holds for every caller).
fn field(what: &'static str, value: &str, comma: bool) -> Result<(), Error> {
    if value.chars().any(|c| c == ':' || c.is_control() || (!comma && c == ',')) {
        return Err(Error::BadField { what, value: value.escape_debug().to_string() });
    }
    Ok(())
}

impl Accounts {
    /// Parses the files as found in the image (any may be absent).
    pub fn parse(passwd: Option<&str>, group: Option<&str>, shadow: Option<&str>) -> Accounts {
        let mut a = Accounts { existed: passwd.is_some() || group.is_some(), ..Accounts::default() };
        for line in passwd.unwrap_or("").lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 7
                && let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse())
            {
                a.users.push(User {
                    name: f[0].into(),
                    uid,
                    gid,
                    gecos: f[4].into(),
                    home: f[5].into(),
                    shell: f[6].into(),
                });
            }
        }
        for line in group.unwrap_or("").lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && let Ok(gid) = f[2].parse()
            {
                let members = f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect();
                a.groups.push(Group { name: f[0].into(), gid, members });
            }
        }
        a.shadow = shadow.unwrap_or("").lines().map(String::from).collect();
        a
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Starts a database for an image with no account files: root only.
    pub fn ensure_root(&mut self) {
        if self.user("root").is_none() && !self.users.iter().any(|u| u.uid == 0) {
            self.users.insert(
                0,
                User {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    gecos: "root".into(),
                    home: "/root".into(),
                    shell: "/sbin/nologin".into(),
                },
            );
        }
        if self.group("root").is_none() && !self.groups.iter().any(|g| g.gid == 0) {
            self.groups.insert(0, Group { name: "root".into(), gid: 0, members: vec![] });
        }
    }

    pub fn add_group(&mut self, name: &str, gid: u32) -> Result<(), Error> {
        field("group name", name, false)?;
        if let Some(g) = self.group(name) {
            if g.gid == gid {
                return Ok(());
            }
            return Err(Error::GroupClash { name: name.into(), gid, existing: g.gid });
        }
        if let Some(g) = self.groups.iter().find(|g| g.gid == gid) {
            return Err(Error::GidTaken { name: name.into(), gid, other: g.name.clone() });
        }
        self.groups.push(Group { name: name.into(), gid, members: vec![] });
        Ok(())
    }

    pub fn add_member(&mut self, group: &str, user: &str) -> Result<(), Error> {
        field("group member", user, false)?;
        let known = self.group_names();
        let g = self
            .groups
            .iter_mut()
            .find(|g| g.name == group)
            .ok_or(Error::UnknownGroup { name: group.into(), known })?;
        if !g.members.iter().any(|m| m == user) {
            g.members.push(user.into());
        }
        Ok(())
    }

    /// Whether a user `name` with `uid` can be added (or is already there as such).
    pub fn check_user(&self, name: &str, uid: u32) -> Result<(), Error> {
        if let Some(u) = self.user(name) {
            if u.uid != uid {
                return Err(Error::UserClash { name: name.into(), uid, existing: u.uid });
            }
        } else if let Some(u) = self.users.iter().find(|u| u.uid == uid) {
            return Err(Error::UidTaken { name: name.into(), uid, other: u.name.clone() });
        }
        Ok(())
    }

    pub fn add_user(&mut self, user: User) -> Result<(), Error> {
        field("user name", &user.name, false)?;
        field("gecos", &user.gecos, true)?;
        field("home", &user.home, false)?;
        field("shell", &user.shell, false)?;
        self.check_user(&user.name, user.uid)?;
        if self.user(&user.name).is_some() {
            return Ok(());
        }
        self.shadow.push(format!("{}:!::0:99999:7:::", user.name));
        self.users.push(user);
        Ok(())
    }

    pub fn gid_of(&self, r: &IdRef) -> Result<u32, Error> {
        match r {
            IdRef::Id(id) => Ok(*id),
            IdRef::Name(n) => self
                .group(n)
                .map(|g| g.gid)
                .ok_or_else(|| Error::UnknownGroup { name: n.clone(), known: self.group_names() }),
        }
    }

    /// Numeric owner for `owner:` fields: a user name alone takes that user's primary group.
    pub fn resolve(&self, user: &IdRef, group: Option<&IdRef>) -> Result<(u32, u32), Error> {
        let (uid, primary) = match user {
            IdRef::Id(id) => (*id, self.users.iter().find(|u| u.uid == *id).map_or(*id, |u| u.gid)),
            IdRef::Name(n) => {
                let u = self.user(n).ok_or_else(|| Error::UnknownUser { name: n.clone(), known: self.user_names() })?;
                (u.uid, u.gid)
            }
        };
        let gid = match group {
            None => primary,
            Some(g) => self.gid_of(g)?,
        };
        Ok((uid, gid))
    }

    fn user_names(&self) -> String {
        names(self.users.iter().map(|u| u.name.as_str()))
    }

    fn group_names(&self) -> String {
        names(self.groups.iter().map(|g| g.name.as_str()))
    }

    pub fn render_passwd(&self) -> String {
        self.users
            .iter()
            .map(|u| format!("{}:x:{}:{}:{}:{}:{}\n", u.name, u.uid, u.gid, u.gecos, u.home, u.shell))
            .collect()
    }

    pub fn render_group(&self) -> String {
        self.groups.iter().map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(","))).collect()
    }

    pub fn render_shadow(&self) -> String {
        // Every user gets a shadow line; existing ones are kept as they were.
        let existing: BTreeMap<&str, &String> =
            self.shadow.iter().map(|l| (l.split(':').next().unwrap_or(""), l)).collect();
        let mut out = String::new();
        for u in &self.users {
            match existing.get(u.name.as_str()) {
                Some(line) => out.push_str(line),
                None => out.push_str(&format!("{}:!::0:99999:7:::", u.name)),
            }
            out.push('\n');
        }
        out
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = it.map(|n| format!("`{n}`")).collect();
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_keeps_existing_lines() {
        let mut a = Accounts::parse(
            Some("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/usr/sbin/nologin\n"),
            Some("root:x:0:\ndaemon:x:1:\n"),
            Some("root:*:19000:0:99999:7:::\n"),
        );
        a.add_group("certgroup", 9999).unwrap();
        a.add_user(User {
            name: "app".into(),
            uid: 1000,
            gid: 9999,
            gecos: String::new(),
            home: "/home/app".into(),
            shell: "/sbin/nologin".into(),
        })
        .unwrap();
        a.add_member("certgroup", "app").unwrap();
        assert_eq!(a.render_group(), "root:x:0:\ndaemon:x:1:\ncertgroup:x:9999:app\n");
        assert_eq!(a.render_shadow(), "root:*:19000:0:99999:7:::\ndaemon:!::0:99999:7:::\napp:!::0:99999:7:::\n");
        let evil = User {
            name: "e".into(),
            uid: 7,
            gid: 7,
            gecos: String::new(),
            home: "/".into(),
            shell: "/bin/sh\nevil::0:0::/:/bin/sh".into(),
        };
        assert!(matches!(a.add_user(evil), Err(Error::BadField { what: "shell", .. })));
        assert!(matches!(a.add_member("certgroup", "x\nroot"), Err(Error::BadField { .. })));
        assert_eq!(
            a.add_user(User {
                name: "x".into(),
                uid: 1,
                gid: 1,
                gecos: String::new(),
                home: "/".into(),
                shell: "/".into()
            }),
            Err(Error::UidTaken { name: "x".into(), uid: 1, other: "daemon".into() })
        );
    }
}
