//! What shipping can fail with.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{0}` is not a server: expected [USER@]HOST[:PORT]")]
    Target(String),
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host}'s host key is unknown or has changed, and ship never accepts one silently")]
    HostKey {
        host: String,
        /// The command that connects as ship does (the same ssh program, port and user).
        connect: String,
        /// The `ssh-keyscan` that prints the server's keys.
        keyscan: String,
    },
    #[error("ssh to {host} failed (exit {code}): {message}")]
    Ssh { host: String, code: i32, message: String },
    #[error("{host}: {message}")]
    Remote { host: String, message: String },
    #[error("{host} answered something ship does not understand: {message}")]
    Protocol { host: String, message: String },
    #[error(
        "{host} runs {arch}, and the image has no platform for it (it has: {have}); give --load-arch or --load none"
    )]
    NoPlatform { host: String, arch: String, have: String },
    #[error("cannot read `{path}`")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::HostKey { connect, keyscan, .. } => Some(format!(
                "connect once with `{connect}`, check the fingerprint it shows with the server's owner and accept it; or look at the keys with `{keyscan}` and add the one you checked to ~/.ssh/known_hosts"
            )),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
