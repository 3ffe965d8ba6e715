//! Files and directories taken from registry images (`files: [{image: …, path: …}]`) into a
//! layer's tree. While planning, each stands in only as a path to take (the lock pins the
//! image); after fetching, what [`crate::source::pick`] took is laid at `to`, with the
//! image's own modes and owners unless the recipe sets them.

use super::error::Result;
use super::planner::{Planner, image_path, insert, place};
use crate::model::member::MemberKind;
use crate::recipe::{self, Diagnostic, ImageFile};
use crate::source::pick;
use crate::tree::{Entry, Tree};
use std::sync::Arc;

impl Planner<'_> {
    pub(super) fn image_file(
        &mut self,
        f: &recipe::FileSpec,
        img: &ImageFile,
        to: &str,
        tree: &mut Tree,
    ) -> Result<()> {
        let reference = self.interp(&img.reference, &f.loc)?;
        let path = self.interp(&img.path, &f.loc)?;
        let platform = img.platform.unwrap_or(self.arch);
        if !self.fetched {
            self.picks.push(pick::Wanted { arch: self.arch, platform, reference, path });
            return Ok(());
        }
        let manifest = self.images.and_then(|m| m.get(&reference)).and_then(|p| p.platforms.get(&platform));
        let members = manifest.and_then(|m| pick::cached(self.store, m, &path)).ok_or_else(|| {
            Diagnostic::new(f.loc.clone(), format!("`{path}` of {reference} ({}) was not fetched", platform.name()))
        })?;
        let owner = f.owner.as_ref().map(|o| self.owner(Some(o))).transpose()?;
        let what = format!("{} (`{path}` of {reference})", f.loc);
        // A directory's content goes into `to`; a file goes to `to` (or into it, under its name).
        let is_dir = members.first().is_some_and(|m| m.kind == MemberKind::Dir);
        let root = if is_dir { image_path(to) } else { Some(self.dest(&place(to, &path), &f.loc)?) };
        for m in &members {
            let dest = match (&root, m.path.is_empty()) {
                (Some(r), true) => Some(r.clone()),
                (Some(r), false) => r.join(&m.path),
                (None, true) => continue,
                (None, false) => image_path(&m.path),
            };
            let Some(dest) = dest else {
                return Err(Diagnostic::new(
                    f.loc.clone(),
                    format!("{what}: `{}` placed under `{to}` is longer than PATH_MAX or NAME_MAX allow", m.path),
                )
                .into());
            };
            let origin: Arc<str> =
                Arc::from(if m.path.is_empty() { what.clone() } else { format!("{what}: {}", m.path) });
            let mut e = Entry::of_member(m, |d| crate::tree::Content::Stored(self.store.blob_path(d)), None, origin)
                .expect("what is taken from an image has no hard links");
            if let (MemberKind::File { .. }, Some(mode)) = (&m.kind, f.mode) {
                e.mode = mode;
            }
            if let Some((uid, gid)) = owner {
                (e.uid, e.gid) = (uid, gid);
            }
            insert(tree, dest, e, &f.loc)?;
        }
        Ok(())
    }
}
