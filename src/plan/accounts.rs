//! Accounts: `/etc/passwd`, `/etc/group` and `/etc/shadow` from the layers below plus the
//! recipe's users and groups.

use super::error::{Error, Result};
use super::planner::{Planner, insert};
use crate::model::path::ImagePath;
use crate::recipe::{Diagnostic, Loc, Recipe};
use crate::tree::users::{Accounts, User};
use crate::tree::{Entry, Tree};
use std::sync::Arc;

impl Planner<'_> {
    /// `/etc/passwd`, `group`, `shadow` (and new users' home directories) from what the
    /// layers below have plus the recipe's accounts.
    pub(super) fn account_files(&mut self, tree: &mut Tree) -> Result<()> {
        let mut accounts = self.view_accounts()?;
        let before: Vec<String> = accounts.users.iter().map(|u| u.name.clone()).collect();
        if !accounts.existed {
            accounts.ensure_root();
        }
        // Planning over a base not read yet: its groups are unknown, the files come later.
        match Self::add_recipe_accounts(&mut accounts, self.recipe) {
            Err(_) if self.lenient => return Ok(()),
            other => other?,
        }
        let loc = &self.recipe.loc;
        let files = [
            ("/etc/passwd", accounts.render_passwd(), 0o644, 0),
            ("/etc/group", accounts.render_group(), 0o644, 0),
            ("/etc/shadow", accounts.render_shadow(), 0o640, accounts.group("shadow").map_or(0, |g| g.gid)),
        ];
        for (path, text, mode, gid) in files {
            let p = ImagePath::new(path).expect("static path");
            let mut e = Entry::bytes(text.into_bytes(), mode, Arc::from("the recipe's users and groups"));
            if let Some(old) = self.view.get(&p) {
                (e.mode, e.uid, e.gid) = (old.mode, old.uid, old.gid);
            } else {
                e.gid = gid;
            }
            insert(tree, p, e, loc)?;
        }
        for u in accounts.users.iter().filter(|u| !before.contains(&u.name)) {
            let Some(home) = ImagePath::new(&u.home) else {
                continue;
            };
            if matches!(u.home.as_str(), "/nonexistent" | "/dev/null")
                || self.view.get(&home).is_some()
                || tree.get(&home).is_some()
            {
                continue;
            }
            insert(tree, home, Entry::dir(0o755, u.uid, u.gid, Arc::from(format!("home of `{}`", u.name))), loc)?;
        }
        self.accounts = accounts;
        Ok(())
    }

    /// The account files of the layers below, as they are now.
    pub(super) fn view_accounts(&self) -> Result<Accounts> {
        let read = |p: &str| -> Result<Option<String>> {
            Ok(self.view.read(p)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        Ok(Accounts::parse(
            read("/etc/passwd")?.as_deref(),
            read("/etc/group")?.as_deref(),
            read("/etc/shadow")?.as_deref(),
        ))
    }

    /// The recipe's groups and users (and group members) added to `accounts`.
    pub(super) fn add_recipe_accounts(accounts: &mut Accounts, recipe: &Recipe) -> Result<()> {
        let c = &recipe.config;
        pub(super) fn at(loc: &Loc) -> impl Fn(crate::tree::users::Error) -> Error + '_ {
            move |e| Error::from(Diagnostic::new(loc.clone(), e.to_string()))
        }
        for g in &c.groups {
            accounts.add_group(&g.name, g.gid).map_err(at(&g.loc))?;
        }
        for u in &c.users {
            accounts.check_user(&u.name, u.uid).map_err(at(&u.loc))?;
            let gid = match &u.group {
                Some(g) => accounts.gid_of(g).map_err(at(&u.loc))?,
                None => match accounts.group(&u.name) {
                    Some(g) => g.gid,
                    None => {
                        accounts.add_group(&u.name, u.uid).map_err(at(&u.loc))?;
                        u.uid
                    }
                },
            };
            accounts
                .add_user(User {
                    name: u.name.clone(),
                    uid: u.uid,
                    gid,
                    gecos: u.gecos.clone(),
                    home: u.home.clone().unwrap_or_else(|| format!("/home/{}", u.name)),
                    shell: u.shell.clone().unwrap_or_else(|| "/sbin/nologin".into()),
                })
                .map_err(at(&u.loc))?;
            for g in &u.groups {
                accounts.add_member(g, &u.name).map_err(at(&u.loc))?;
            }
        }
        for g in &c.groups {
            for m in &g.members {
                accounts.add_member(&g.name, m).map_err(at(&g.loc))?;
            }
        }
        Ok(())
    }
}
