//! Where a built image goes. Destinations are named the way skopeo names them:
//! `oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`. Each sink writes under temporary
//! names and renames into place, so an interrupted write leaves nothing half-done under a
//! final name.

pub mod archive;
pub mod error;
pub mod layout;

pub use error::Error;

use crate::model::platform::Arch;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// An OCI image layout directory, optionally naming one reference in it.
    Oci {
        dir: PathBuf,
        reference: Option<String>,
    },
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
}

impl Dest {
    pub fn parse(s: &str) -> Result<Dest, Error> {
        let bad = || Error::BadDest(s.to_string());
        let (transport, rest) = s.split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        Ok(match transport {
            "oci" => match rest.rsplit_once(':') {
                Some((dir, r)) if !r.contains('/') && std::path::Path::new(dir).is_dir() => {
                    Dest::Oci { dir: dir.into(), reference: Some(r.into()) }
                }
                _ => Dest::Oci { dir: rest.into(), reference: None },
            },
            "oci-archive" => Dest::OciArchive(rest.into()),
            "docker-archive" => Dest::DockerArchive(rest.into()),
            _ => return Err(bad()),
        })
    }

    pub fn default_for(name: &str) -> Dest {
        Dest::Oci { dir: PathBuf::from("out").join(name), reference: None }
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::Oci { dir, reference: None } => write!(f, "oci:{}", dir.display()),
            Dest::Oci { dir, reference: Some(r) } => write!(f, "oci:{}:{r}", dir.display()),
            Dest::OciArchive(p) => write!(f, "oci-archive:{}", p.display()),
            Dest::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
        }
    }
}

/// Writes `image` to `dest`. A docker archive takes the platform `arch`. `files`: see
/// [`layout::write`].
pub fn write(
    image: &crate::oci::Image,
    dest: &Dest,
    arch: Option<Arch>,
    files: Option<&crate::store::Store>,
) -> Result<(), Error> {
    match dest {
        Dest::Oci { dir, .. } => layout::write(image, dir, files),
        Dest::OciArchive(p) => archive::write_oci(image, p),
        Dest::DockerArchive(p) => {
            let platform = match arch {
                Some(a) => image.platform(a),
                None if image.platforms.len() == 1 => image.platforms.first(),
                None => None,
            };
            let platform = platform.ok_or_else(|| {
                Error::NeedOnePlatform(image.platforms.iter().map(|p| p.arch.name()).collect::<Vec<_>>().join(", "))
            })?;
            archive::write_docker(image, platform, p)
        }
    }
}
