//! A real `sshd` (Debian's openssh-server) on 127.0.0.1 with throwaway host and client keys,
//! an ssh client config that names it, podman on the "server" with its storage in the test's
//! directory, and a TCP relay that counts the bytes a client sends through it.

use super::{require, sh};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the server's sessions see.
pub struct Server {
    /// Programs the session's PATH holds: `None` for the machine's own PATH.
    pub without: Option<&'static str>,
}

impl Sshd {
    pub fn start(server: Server) -> Sshd {
        require("sshd");
        require("ssh");
        require("ssh-keygen");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for key in ["host_key", "client_key"] {
            let out = sh(d, &format!("ssh-keygen -q -t ed25519 -N '' -C assemble-test -f {key}"));
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // podman on the server keeps its images in the test's directory.
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/podman/graph\"\nrunroot = \"{0}/podman/run\"\n",
                d.display()
            ),
        )
        .unwrap();
        let path = match server.without {
            None => std::env::var("PATH").unwrap(),
            Some(missing) => {
                // Every program of the machine but one.
                let bin = d.join("bin");
                std::fs::create_dir_all(&bin).unwrap();
                for dir in std::env::var("PATH").unwrap().split(':') {
                    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                        let name = e.file_name();
                        if name != missing && !bin.join(&name).exists() {
                            let _ = std::os::unix::fs::symlink(e.path(), bin.join(&name));
                        }
                    }
                }
                bin.display().to_string()
            }
        };
        let port = super::registry::free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\nPidFile {0}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\nSetEnv PATH={path} CONTAINERS_STORAGE_CONF={0}/storage.conf\nAcceptEnv ASSEMBLE_STORE\n",
                d.display()
            ),
        )
        .unwrap();
        let sshd = sh(d, "command -v sshd").stdout.trim().to_string();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(d.join("known_hosts"), format!("assemble-test-server {host_key}")).unwrap();
        std::fs::write(d.join("empty_known_hosts"), "").unwrap();
        Sshd { child, port, dir }
    }

    /// An ssh client config: `server` is this sshd (its key known), `relay` the same through
    /// a relay on `relay_port`, `stranger` this sshd with nothing in known_hosts.
    pub fn client_config(&self, relay_port: Option<u16>) -> PathBuf {
        let d = self.dir.path();
        let entry = |name: &str, port: u16, known: &str| {
            format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {0}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {0}/{known}\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias assemble-test-server\n  LogLevel ERROR\n",
                d.display()
            )
        };
        let mut text = entry("server", self.port, "known_hosts") + &entry("stranger", self.port, "empty_known_hosts");
        if let Some(p) = relay_port {
            text += &entry("relay", p, "known_hosts");
        }
        // A fleet: `web1` and `web2` are this sshd with a store each (the server takes
        // ASSEMBLE_STORE from the client), `down` a port nothing listens on.
        for web in ["web1", "web2"] {
            text += &entry(web, self.port, "known_hosts");
            text += &format!("  SetEnv ASSEMBLE_STORE={}/store-{web}\n", d.display());
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        text += &entry("down", closed, "known_hosts");
        let path = d.join(format!("ssh_config_{}", relay_port.unwrap_or(0)));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `ASSEMBLE_SSH_COMMAND` for that config.
    pub fn ssh_command(&self, config: &Path) -> String {
        format!("ssh -F {}", config.display())
    }

    /// Runs a command as the server's sessions would (its podman storage).
    pub fn on_server(&self, command: &str) -> super::Run {
        let conf = self.dir.path().join("storage.conf");
        sh(self.dir.path(), &format!("CONTAINERS_STORAGE_CONF={} {command}", conf.display()))
    }
}

/// A TCP relay to `upstream` that counts the bytes clients send, optionally slowed to
/// `bytes_per_sec`.
pub struct Relay {
    pub port: u16,
    pub sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Relay {
    pub fn start(upstream: u16, bytes_per_sec: Option<u64>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent2, stop2) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = sent2.clone();
                std::thread::spawn(move || pump(client, server, Some(counter), bytes_per_sec));
                std::thread::spawn(move || pump(s2, c2, None, None));
            }
        });
        Relay { port, sent, stop }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: Option<Arc<AtomicU64>>, rate: Option<u64>) {
    let mut buf = vec![0; 16 * 1024];
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
        if let Some(c) = &counter {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}
