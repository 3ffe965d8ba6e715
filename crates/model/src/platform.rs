//! Target platforms, named as Docker and the OCI image-spec name them.

use std::fmt;
use std::str::FromStr;

/// One Linux CPU architecture (with its variant where the spec has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
    ArmV7,
    ArmV6,
    I386,
    Ppc64le,
    S390x,
    Riscv64,
}

pub const ALL: [Arch; 8] =
    [Arch::Amd64, Arch::Arm64, Arch::ArmV7, Arch::ArmV6, Arch::I386, Arch::Ppc64le, Arch::S390x, Arch::Riscv64];

impl Arch {
    /// The name used in recipes, locks and on the command line (`amd64`, `arm/v7`, …).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::ArmV7 => "arm/v7",
            Arch::ArmV6 => "arm/v6",
            Arch::I386 => "386",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The OCI `architecture` field.
    pub fn oci_arch(self) -> &'static str {
        match self {
            Arch::ArmV7 | Arch::ArmV6 => "arm",
            other => other.name(),
        }
    }

    /// The OCI `variant` field, where the platform has one.
    pub fn variant(self) -> Option<&'static str> {
        match self {
            Arch::Arm64 => Some("v8"),
            Arch::ArmV7 => Some("v7"),
            Arch::ArmV6 => Some("v6"),
            _ => None,
        }
    }

    /// The platform as OCI tools print it: `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`.
    pub fn oci_platform(self) -> String {
        match self.variant() {
            Some(v) => format!("linux/{}/{v}", self.oci_arch()),
            None => format!("linux/{}", self.oci_arch()),
        }
    }

    /// The kernel's name for it (`uname -m`), which many upstream release files use.
    pub fn uname(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
            Arch::ArmV7 => "armv7l",
            Arch::ArmV6 => "armv6l",
            Arch::I386 => "i686",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// Debian's name for it (`dpkg --print-architecture`).
    pub fn debian(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::ArmV7 => "armhf",
            Arch::ArmV6 => "armel",
            Arch::I386 => "i386",
            Arch::Ppc64le => "ppc64el",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The architecture this binary runs on, when it is one we build for.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            "x86" => Some(Arch::I386),
            "powerpc64" => Some(Arch::Ppc64le),
            "s390x" => Some(Arch::S390x),
            "riscv64" => Some(Arch::Riscv64),
            "arm" => Some(Arch::ArmV7),
            _ => None,
        }
    }

    pub fn from_oci(arch: &str, variant: Option<&str>) -> Option<Arch> {
        ALL.into_iter()
            .find(|a| a.oci_arch() == arch && (a.variant() == variant || (variant.is_none() && *a != Arch::ArmV6)))
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;

    /// Accepts the recipe names plus the common aliases (`linux/arm64`, `aarch64`, `x86_64`, `armhf`).
    fn from_str(s: &str) -> Result<Arch, String> {
        let s = s.strip_prefix("linux/").unwrap_or(s);
        let arch = match s {
            "amd64" | "x86_64" => Arch::Amd64,
            "arm64" | "arm64/v8" | "aarch64" => Arch::Arm64,
            "arm/v7" | "armv7" | "armhf" | "arm" => Arch::ArmV7,
            "arm/v6" | "armv6" | "armel" => Arch::ArmV6,
            "386" | "i386" | "x86" => Arch::I386,
            "ppc64le" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64" => Arch::Riscv64,
            _ => {
                return Err(format!("unknown architecture `{s}`, expected one of {}", names()));
            }
        };
        Ok(arch)
    }
}

/// The accepted names, for messages.
pub fn names() -> String {
    ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_resolve() {
        for a in ALL {
            assert_eq!(a.name().parse::<Arch>().unwrap(), a);
            assert_eq!(Arch::from_oci(a.oci_arch(), a.variant()), Some(a));
        }
        assert_eq!("linux/arm64".parse::<Arch>().unwrap(), Arch::Arm64);
        assert_eq!(Arch::from_oci("arm64", None), Some(Arch::Arm64));
        assert!("mips".parse::<Arch>().is_err());
    }
}
