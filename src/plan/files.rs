//! Local files, trees, downloads and archives into a layer's tree. Local paths must resolve
//! inside the build context; large host files the stat cache does not know are hashed as
//! they are packed rather than read twice ([`LargeFiles`]).

use super::error::Result;
use super::planner::{LargeFiles, Planner, image_path, insert, origin, place};
use crate::model::digest::Digest;
use crate::model::path::ImagePath;
use crate::recipe::{self, Content, Diagnostic, Extract, FileSource, Loc};
use crate::source::archive::{self, Member, MemberKind};
use crate::source::fetch::Download;
use crate::tree::{Content as Bytes, Entry, Kind, Tree};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Large host files are left unhashed by the plan when the stat cache does not know them
/// (hashed once, as they are packed), from this size up.
pub const DEFER_HASH: u64 = 16 << 20;
// The packer must look such files up to learn their digests.
const _: () = assert!(DEFER_HASH >= crate::layer::tar::LOOKUP_MIN);

impl Planner<'_> {
    /// `rel` (relative to the recipe's directory) on this machine: it must exist and lie
    /// inside the build context. With `follow`, every symlink is resolved (the path is read
    /// as what it points to); without, only its parent is, and a final symlink is copied
    /// as a link, never followed.
    pub(super) fn host_path(&self, rel: &str, loc: &Loc, what: &str, follow: bool) -> Result<PathBuf> {
        let p = self.recipe.dir.join(rel);
        let Ok(meta) = fs_err::symlink_metadata(&p) else {
            return Err(Diagnostic::new(
                loc.clone(),
                format!("{what} `{rel}` does not exist (looked for `{}`)", p.display()),
            )
            .with_hint("relative paths are relative to the recipe's directory")
            .into());
        };
        let unreadable =
            |e: std::io::Error| Diagnostic::new(loc.clone(), format!("{what} `{rel}` cannot be resolved: {e}"));
        let resolved = if follow || !meta.file_type().is_symlink() {
            fs_err::canonicalize(&p).map_err(unreadable)?
        } else {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let name = p.file_name().ok_or_else(|| unreadable(std::io::Error::other("it has no file name")))?;
            fs_err::canonicalize(parent).map_err(unreadable)?.join(name)
        };
        if !resolved.starts_with(&self.context) {
            return Err(Diagnostic::new(
                loc.clone(),
                format!(
                    "{what} `{rel}` is outside the build context `{}` (it resolves to `{}`)",
                    self.context.display(),
                    resolved.display()
                ),
            )
            .with_hint("local files come from the recipe's directory; widen the context on purpose with `context:` in the recipe or `--context DIR`")
            .into());
        }
        Ok(resolved)
    }

    /// Runs `read` (which reads the local input `rel`, resolved to `host`) and notes the input
    /// for the lock: a file by its sha256, a directory by a hash of what it holds (names, kinds,
    /// contents, executable bits), so that `verify` can name the input that changed.
    pub(super) fn noting<T>(&self, rel: &str, host: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
        let mark = self.seen.borrow().len();
        let out = read()?;
        let read: Vec<(PathBuf, String)> = self.seen.borrow_mut().drain(mark..).collect();
        // A plain file is recorded by its sha256, as `sha256sum` gives it, unless it is
        // executable (which changes its mode in the image): then by a hash of both.
        let single = match read.as_slice() {
            [(path, what)] if path == host && what.ends_with(" 644") => {
                what.split(' ').next().and_then(|d| d.parse::<Digest>().ok())
            }
            _ => None,
        };
        let digest = single.unwrap_or_else(|| {
            let mut h = crate::model::digest::Hasher::default();
            for (path, what) in &read {
                let path = path.strip_prefix(host).unwrap_or(path);
                h.update(format!("{}\0{what}\n", path.display()).as_bytes());
            }
            h.finish().0
        });
        self.sources.borrow_mut().insert(rel.to_string(), digest);
        Ok(out)
    }

    pub(super) fn content(&mut self, c: &Content, tree: &mut Tree) -> Result<()> {
        for f in &c.files {
            self.file(f, tree)?;
        }
        for t in &c.trees {
            let rel = self.interp(&t.path, &t.loc)?;
            let host = self.host_path(&rel, &t.loc, "tree", true)?;
            if !host.is_dir() {
                return Err(Diagnostic::new(t.loc.clone(), format!("tree `{rel}` is not a directory")).into());
            }
            let owner = self.owner(t.owner.as_ref())?;
            let to = image_path(&t.to);
            let what = format!("{} (tree `{rel}`)", t.loc);
            self.noting(&rel, &host, || self.host_dir(&host, to.as_ref(), None, owner, &what, tree))?;
        }
        for s in &c.symlinks {
            let path = self.dest(&s.path, &s.loc)?;
            let target = self.interp(&s.target, &s.loc)?;
            insert(tree, path, Entry::symlink(target, origin(&s.loc, "symlink")), &s.loc)?;
        }
        for d in &c.dirs {
            let path = self.dest(&d.path, &d.loc)?;
            let (uid, gid) = self.owner(d.owner.as_ref())?;
            insert(tree, path, Entry::dir(d.mode.unwrap_or(0o755), uid, gid, origin(&d.loc, "dirs")), &d.loc)?;
        }
        Ok(())
    }

    pub(super) fn file(&mut self, f: &recipe::FileSpec, tree: &mut Tree) -> Result<()> {
        let (uid, gid) = self.owner(f.owner.as_ref())?;
        let to = f.to.as_deref().map(|t| self.interp(t, &f.loc)).transpose()?;
        match &f.source {
            FileSource::Local(per) => {
                let Some(rel) = per.get(self.arch) else {
                    return Ok(());
                };
                let rel = self.interp(rel, &f.loc)?;
                // A symlink given as a plain file is copied as a link; anything read through
                // (an archive, a directory) is resolved first.
                let link = f.extract == Extract::No
                    && fs_err::symlink_metadata(self.recipe.dir.join(&rel)).is_ok_and(|m| m.file_type().is_symlink())
                    && !self.recipe.dir.join(&rel).is_dir();
                let host = self.host_path(&rel, &f.loc, "local file", !link)?;
                let what = format!("{} (`{rel}`)", f.loc);
                if f.extract != Extract::No {
                    let kind = match f.extract {
                        Extract::As(k) => k,
                        _ => archive::detect(&rel, &host).ok_or_else(|| archive::Error::Unknown(rel.clone()))?,
                    };
                    let members = archive::unpack(self.store, &host, kind, &rel, self.recipe.unpack_limit)?;
                    self.sources.borrow_mut().insert(rel.clone(), self.store.file_digest(&host)?.0);
                    return self.members(&members, f, to.as_deref().unwrap_or("/"), (uid, gid), &what, tree);
                }
                let to = to.expect("validated: non-extract files have `to`");
                if host.is_dir() {
                    let to = image_path(&to);
                    return self
                        .noting(&rel, &host, || self.host_dir(&host, to.as_ref(), f.mode, (uid, gid), &what, tree));
                }
                let dest = self.dest(&place(&to, &rel), &f.loc)?;
                self.noting(&rel, &host, || self.host_file(&host, dest, f.mode, (uid, gid), &what, tree, &f.loc))
            }
            FileSource::Url { url, sha256 } => {
                let (Some(url), Some(sha)) = (url.get(self.arch), sha256.get(self.arch)) else {
                    return Ok(());
                };
                let url = self.interp(url, &f.loc)?;
                self.downloads
                    .push((self.arch, Download { url: url.clone(), sha256: *sha, origin: f.loc.to_string() }));
                let what = format!("{} (`{}`)", f.loc, crate::model::text::redact(&url));
                let blob = self.store.blob_path(sha);
                if f.extract != Extract::No {
                    if !self.fetched {
                        return Ok(());
                    }
                    let name = url.split(['?', '#']).next().unwrap_or(&url);
                    let kind = match f.extract {
                        Extract::As(k) => k,
                        _ => archive::detect(name, &blob)
                            .ok_or_else(|| archive::Error::Unknown(crate::model::text::redact(&url)))?,
                    };
                    let members = self.unpack_cached(sha, kind, &url)?;
                    return self.members(&members, f, to.as_deref().unwrap_or("/"), (uid, gid), &what, tree);
                }
                let to = to.expect("validated: non-extract files have `to`");
                let file_name = url.split(['?', '#']).next().unwrap_or(&url).rsplit('/').next().unwrap_or("download");
                let dest = self.dest(&place(&to, file_name), &f.loc)?;
                let size = if self.fetched { fs_err::metadata(&blob)?.len() } else { 0 };
                let mut e = Entry::file(Bytes::Stored(blob), size, *sha, f.mode.unwrap_or(0o644), Arc::from(what));
                (e.uid, e.gid) = (uid, gid);
                insert(tree, dest, e, &f.loc)
            }
            FileSource::Image(img) => {
                let to = to.expect("validated: image files have `to`");
                self.image_file(f, img, &to, tree)
            }
        }
    }

    /// Archive members from the cache's listing when this archive was unpacked before.
    pub(super) fn unpack_cached(&self, sha: &Digest, kind: recipe::ArchiveKind, url: &str) -> Result<Vec<Member>> {
        let listing = self.store.listing_path(&format!("{}-{kind:?}.members.json", sha.hex()));
        if let Ok(bytes) = fs_err::read(&listing)
            && let Ok(members) = serde_json::from_slice::<Vec<Member>>(&bytes)
        {
            let complete = members.iter().all(|m| match &m.kind {
                MemberKind::File { digest, .. } => self.store.has_blob(digest),
                _ => true,
            });
            if complete {
                return Ok(members);
            }
        }
        // The download in the cache must still be what its pin names.
        let blob = self.store.verify_blob(sha)?;
        let members =
            archive::unpack(self.store, &blob, kind, &crate::model::text::redact(url), self.recipe.unpack_limit)?;
        let mut tmp = self.store.temp()?;
        std::io::Write::write_all(&mut tmp, &serde_json::to_vec(&members).expect("serialisable"))?;
        tmp.persist(&listing).map_err(|e| e.error)?;
        Ok(members)
    }

    pub(super) fn members(
        &self,
        members: &[Member],
        f: &recipe::FileSpec,
        to: &str,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
    ) -> Result<()> {
        let strip = f.strip_components as usize;
        let stripped = |p: &str| -> Option<String> {
            let parts: Vec<&str> = p.split('/').collect();
            (parts.len() > strip).then(|| parts[strip..].join("/"))
        };
        let root = image_path(to);
        let at = |rel: &str| -> Option<ImagePath> {
            match &root {
                Some(r) => r.join(rel),
                None => ImagePath::new(rel),
            }
        };
        for m in members {
            let Some(rel) = stripped(&m.path) else {
                continue;
            };
            let Some(path) = at(&rel) else { continue };
            let origin: Arc<str> = Arc::from(format!("{what}: {}", m.path));
            let link = match &m.kind {
                MemberKind::Hardlink(t) => Some(stripped(t).and_then(|t| at(&t)).ok_or_else(|| {
                    Diagnostic::new(
                        f.loc.clone(),
                        format!("{what}: `{}` is a hard link to `{t}`, which `strip_components` leaves out", m.path),
                    )
                })?),
                _ => None,
            };
            let mut e = Entry::of_member(m, |d| crate::tree::Content::Stored(self.store.blob_path(d)), link, origin)
                .expect("a hard link has its target");
            if let (MemberKind::File { .. }, Some(mode)) = (&m.kind, f.mode) {
                e.mode = mode;
            }
            (e.uid, e.gid) = owner;
            insert(tree, path, e, &f.loc)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn host_file(
        &self,
        host: &Path,
        dest: ImagePath,
        mode: Option<u32>,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
        loc: &Loc,
    ) -> Result<()> {
        let meta = fs_err::symlink_metadata(host)?;
        let origin: Arc<str> = Arc::from(what);
        let mut e = if meta.file_type().is_symlink() {
            let target = fs_err::read_link(host)?.to_string_lossy().into_owned();
            self.seen.borrow_mut().push((host.to_path_buf(), format!("-> {target}")));
            Entry::symlink(target, origin)
        } else if meta.is_file() {
            let (digest, size) = self.host_digest(host, &meta, &dest, tree)?;
            let default = if meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 };
            self.seen.borrow_mut().push((host.to_path_buf(), format!("{digest} {default:o}")));
            Entry::file(Bytes::Host(host.to_path_buf()), size, digest, mode.unwrap_or(default), origin)
        } else {
            return Err(Diagnostic::new(
                loc.clone(),
                format!("`{}` is not a regular file, directory or symlink", host.display()),
            )
            .into());
        };
        (e.uid, e.gid) = owner;
        insert(tree, dest, e, loc)
    }

    /// A host file's content digest and size; or, for a large file the stat cache does not
    /// know, what [`Planner::large`] says. A file is never deferred where the tree has another
    /// entry, so equal files from two sources still agree.
    pub(super) fn host_digest(
        &self,
        host: &Path,
        meta: &std::fs::Metadata,
        dest: &ImagePath,
        tree: &mut Tree,
    ) -> Result<(Digest, u64)> {
        if meta.len() < DEFER_HASH || matches!(self.large, LargeFiles::Hash) {
            return Ok(self.store.file_digest(host)?);
        }
        let id = self.store.identity(host)?;
        if let Some(d) = self.store.remembered(&id) {
            return Ok((d, id.size));
        }
        match self.large {
            LargeFiles::Learned(learned) => {
                if let Some(d) = learned.get(&id.digest) {
                    return Ok((*d, id.size));
                }
            }
            LargeFiles::Defer => match tree.get(dest) {
                None => {
                    tracing::debug!("{} is hashed as it is packed", host.display());
                    self.deferred.set(true);
                    return Ok((id.digest, id.size));
                }
                // Another source's deferred file at the same path: hashed after all.
                Some(Entry { kind: Kind::File { content: Bytes::Host(other), digest, .. }, .. })
                    if self.store.identity(other)?.digest == *digest =>
                {
                    let other = other.clone();
                    let (d, _) = self.store.file_digest(&other)?;
                    if let Some(Entry { kind: Kind::File { digest, .. }, .. }) = tree.get_mut(dest) {
                        *digest = d;
                    }
                }
                Some(_) => {}
            },
            LargeFiles::Hash => {}
        }
        Ok(self.store.file_digest(host)?)
    }

    /// Copies a host directory: files keep only their executable bit (0755 or 0644, or
    /// `mode` when given), directories are 0755, symlinks are kept as symlinks.
    pub(super) fn host_dir(
        &self,
        host: &Path,
        to: Option<&ImagePath>,
        mode: Option<u32>,
        owner: (u32, u32),
        what: &str,
        tree: &mut Tree,
    ) -> Result<()> {
        let mut names: Vec<_> =
            fs_err::read_dir(host)?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?;
        names.sort();
        let loc = &self.recipe.loc;
        for name in names {
            let name_s = name.to_string_lossy().into_owned();
            let child = host.join(&name);
            let Some(dest) = (match to {
                Some(t) => t.join(&name_s),
                None => ImagePath::new(&name_s),
            }) else {
                let at = to.map_or(String::new(), |t| t.to_string());
                return Err(Diagnostic::new(
                    loc.clone(),
                    format!(
                        "{what}: `{name_s}` would be placed at `{at}/{name_s}`, which is longer than PATH_MAX ({} bytes) or has a component longer than NAME_MAX ({})",
                        crate::model::path::PATH_MAX,
                        crate::model::path::NAME_MAX
                    ),
                )
                .into());
            };
            let child_what = format!("{what}: {name_s}");
            let meta = fs_err::symlink_metadata(&child)?;
            if meta.is_dir() {
                self.seen.borrow_mut().push((child.clone(), "dir".into()));
                let mut e = Entry::dir(0o755, owner.0, owner.1, Arc::from(child_what.as_str()));
                e.implicit = false;
                insert(tree, dest.clone(), e, loc)?;
                self.host_dir(&child, Some(&dest), mode, owner, &child_what, tree)?;
            } else {
                self.host_file(&child, dest, mode, owner, &child_what, tree, loc)?;
            }
        }
        Ok(())
    }
}
