//! Distribution packages into a layer: Debian packages with the dpkg database and the
//! script-free fix-ups, Alpine packages checked again against their pins with apk's database
//! and busybox links.

use super::error::Result;
use super::planner::Planner;
use crate::model::digest::Digest;
use crate::source::{apk, deb};
use crate::tree::Tree;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

impl Planner<'_> {
    /// Lays this layer's pinned packages into `tree`, with the dpkg database and the
    /// script-free fix-ups (see `source::deb::install`).
    pub(super) fn packages_into(
        &mut self,
        layer: &str,
        spec: &crate::model::spec::DebianSpec,
        tree: &mut Tree,
        first: bool,
    ) -> Result<()> {
        let pins: Vec<&deb::Pin> = self.pins.iter().filter(|p| p.layer == layer).collect();
        if pins.is_empty() || !self.fetched {
            return Ok(());
        }
        let debs: Vec<deb::unpack::Deb> = pins
            .par_iter()
            .map(|p| deb::unpacked(self.store, p, self.recipe.unpack_limit))
            .collect::<std::result::Result<_, _>>()?;
        let pkgs: Vec<deb::install::Pkg<'_>> = pins
            .iter()
            .zip(&debs)
            .map(|(p, d)| deb::install::Pkg {
                name: &p.name,
                arch: &p.architecture,
                multi_arch_same: p.multi_arch_same,
                deb: d,
            })
            .collect();
        deb::install::lay_files(self.store, &pkgs, tree, spec.merged_usr, first).map_err(deb::Error::from)?;
        let below_status = self.view.read("/var/lib/dpkg/status")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        deb::install::dpkg_database(self.store, below_status.as_deref(), &pkgs, tree).map_err(deb::Error::from)?;
        let mut view = self.view.clone();
        view.apply(tree);
        if self.view.read("/etc/passwd")?.is_none() {
            deb::install::base_passwd(&view, tree, self.epoch)?;
        }
        let certs = debs.iter().any(|d| d.entries.iter().any(|e| e.path.starts_with("usr/share/ca-certificates/")));
        if certs || pins.iter().any(|p| p.name == "ca-certificates") {
            deb::install::ca_bundle(&view, tree)?;
        }
        let alts: Vec<deb::install::Alternative> = debs
            .iter()
            .filter_map(|d| d.control.get("postinst"))
            .flat_map(|s| deb::install::alternatives_in(&String::from_utf8_lossy(s)))
            .collect();
        view.apply(tree);
        deb::install::alternatives(&view, &alts, tree, spec.merged_usr, &spec.alternatives);
        Ok(())
    }

    /// Lays this layer's pinned Alpine packages into `tree`, each checked again against its
    /// pin (control checksum, data hash, signature), with apk's database and busybox links.
    pub(super) fn apks_into(
        &mut self,
        layer: &str,
        spec: &crate::model::spec::AlpineSpec,
        tree: &mut Tree,
    ) -> Result<()> {
        let pins: Vec<&apk::Pin> = self.apk_pins.iter().filter(|p| p.layer == layer).collect();
        if pins.is_empty() || !self.fetched {
            return Ok(());
        }
        let key_paths: Vec<&Path> = spec.keys.iter().map(PathBuf::as_path).collect();
        let keys = apk::Keys::load(&key_paths)?;
        let mut packages = Vec::new();
        for p in &pins {
            let sha: Digest = p.sha256.parse().map_err(|e: String| apk::Error::Format {
                file: format!("{}-{}.apk", p.name, p.version),
                why: format!("the lock's sha256: {e}"),
            })?;
            let bytes = fs_err::read(self.store.verify_blob(&sha)?)?;
            let record = apk::Record {
                fields: vec![
                    ('P', p.name.clone()),
                    ('V', p.version.clone()),
                    ('C', p.checksum.clone()),
                    ('I', p.installed_size.to_string()),
                ],
            };
            let file = format!("{}-{}.apk", p.name, p.version);
            let pkg = apk::read_package(&bytes, &record, &keys, &file)?;
            let entries = apk::install::entries(self.store, &pkg.data, &file)?;
            packages.push((pkg, entries));
        }
        let pkgs: Vec<apk::install::Pkg<'_>> = pins
            .iter()
            .zip(&packages)
            .map(|(p, (pkg, entries))| apk::install::Pkg {
                name: &p.name,
                version: &p.version,
                checksum: &p.checksum,
                file_size: p.size,
                package: pkg,
                entries: entries.clone(),
            })
            .collect();
        apk::install::lay(self.store, &pkgs, tree)?;
        let below = self.view.read("/lib/apk/db/installed")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        // The world file names what was asked for: the layers' below (an image base's too) and these.
        let mut world: Vec<String> = spec.packages.clone();
        if let Some(w) = self.view.read("/etc/apk/world")? {
            world.extend(String::from_utf8_lossy(&w).split_whitespace().map(str::to_string));
        }
        for l in &self.recipe.layers {
            world.extend(l.packages.iter().cloned());
            if l.name == layer {
                break;
            }
        }
        let keys_bytes: Vec<(String, Vec<u8>)> = spec
            .keys
            .iter()
            .filter_map(|k| Some((k.file_name()?.to_string_lossy().into_owned(), fs_err::read(k).ok()?)))
            .collect();
        let repos: Vec<String> =
            spec.repositories.iter().map(|(t, l)| t.as_ref().map_or(l.clone(), |t| format!("@{t} {l}"))).collect();
        apk::install::database(below.as_deref(), &pkgs, &world, apk::arch_name(self.arch), &repos, &keys_bytes, tree);
        let mut view = self.view.clone();
        view.apply(tree);
        apk::install::busybox_links(&view, tree)?;
        Ok(())
    }
}
