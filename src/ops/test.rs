//! `assemble test`: a recipe's `tests:` against its built image, per platform. The image's
//! layers are unpacked (whiteouts honoured) into a scratch root; file checks read the layers'
//! own metadata and the unpacked bytes; commands run under `chroot` for the host's
//! architecture and through `qemu-<arch>-static` for others. A command that cannot run is
//! reported as not run, never as passed.

use crate::model::platform::Arch;
use crate::oci::{Image, PlatformImage};
use crate::recipe::{Check, TestSpec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot unpack layer {layer} of {arch}")]
    Unpack {
        layer: String,
        arch: Arch,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make a scratch directory under `{0}`")]
    Scratch(PathBuf, #[source] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub arch: String,
    pub test: String,
    pub status: Status,
    pub detail: String,
}

/// What a layer said about one path (the last layer to mention it wins).
#[derive(Debug, Clone)]
struct Meta {
    kind: &'static str,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// One image to test: what the user calls it, the image and its tests.
pub struct Job<'a> {
    pub label: String,
    pub image: &'a Image,
    pub tests: &'a [TestSpec],
}

/// Runs every job's tests, `threads` images at a time (each image's platforms at the same
/// time too); results come back in the jobs' order whatever the threads did. An image that an
/// earlier job already tested with the same tests (a variant that makes the same image as the
/// default) is not unpacked and run again: its outcomes are that job's, each saying so.
pub fn run_all(jobs: &[Job<'_>], only: &[Arch], scratch: &Path, threads: usize) -> Vec<Result<Vec<Outcome>, Error>> {
    use rayon::prelude::*;
    let first_same = |i: usize| {
        (0..i).find(|&j| jobs[j].image.index.digest == jobs[i].image.index.digest && jobs[j].tests == jobs[i].tests)
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().expect("thread pool");
    let mut done: Vec<Option<Result<Vec<Outcome>, Error>>> = pool.install(|| {
        jobs.par_iter()
            .enumerate()
            .map(|(i, job)| first_same(i).is_none().then(|| run(job.image, job.tests, only, scratch)))
            .collect()
    });
    for i in 0..jobs.len() {
        if let Some(j) = first_same(i) {
            let same = match &done[j] {
                Some(Ok(outcomes)) => Ok(outcomes
                    .iter()
                    .map(|o| Outcome { detail: format!("same image as {}: {}", jobs[j].label, o.detail), ..o.clone() })
                    .collect()),
                // The first job's error is reported there; this one has no outcomes.
                _ => Ok(Vec::new()),
            };
            done[i] = Some(same);
        }
    }
    done.into_iter().map(|d| d.expect("every job has a result")).collect()
}

/// Runs `tests` on every platform of `image` (or those in `only`), the platforms at the same
/// time, each in its own root unpacked under `scratch` (removed afterwards).
pub fn run(image: &Image, tests: &[TestSpec], only: &[Arch], scratch: &Path) -> Result<Vec<Outcome>, Error> {
    let platforms: Vec<&PlatformImage> =
        image.platforms.iter().filter(|p| only.is_empty() || only.contains(&p.arch)).collect();
    let per_platform: Vec<Result<Vec<Outcome>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = platforms.iter().map(|p| s.spawn(move || run_platform(p, tests, scratch))).collect();
        handles.into_iter().map(|h| h.join().expect("a test thread panicked")).collect()
    });
    let mut out = Vec::new();
    for outcomes in per_platform {
        out.extend(outcomes?);
    }
    Ok(out)
}

fn run_platform(p: &PlatformImage, tests: &[TestSpec], scratch: &Path) -> Result<Vec<Outcome>, Error> {
    let mine: Vec<&TestSpec> = tests.iter().filter(|t| t.archs.is_empty() || t.archs.contains(&p.arch)).collect();
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let dir = tempfile::Builder::new()
        .prefix("test-root-")
        .tempdir_in(scratch)
        .map_err(|e| Error::Scratch(scratch.to_path_buf(), e))?;
    let root = dir.path().join("rootfs");
    let meta = unpack(p, &root)?;
    let config: serde_json::Value = serde_json::from_slice(&p.config.bytes).unwrap_or_default();
    Ok(mine
        .into_iter()
        .map(|t| {
            let (status, detail) = check(t, p, &root, &meta, &config);
            Outcome { arch: p.arch.name().into(), test: t.name.clone(), status, detail }
        })
        .collect())
}

/// Unpacking and starting commands exclude each other: a process forked while another
/// thread has a file open for writing holds that file until it execs, and running that file
/// meanwhile fails with "Text file busy". Unpacks share the lock; each spawn takes it alone.
/// (Process-wide by nature: it is about this process's fork.)
static FORKING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Unpacks the platform's layers into `root`, returning each path's metadata.
fn unpack(p: &PlatformImage, root: &Path) -> Result<BTreeMap<String, Meta>, Error> {
    let _writing = FORKING.read().unwrap_or_else(|e| e.into_inner());
    fs_err::create_dir_all(root).map_err(|e| Error::Scratch(root.to_path_buf(), e))?;
    let is_root = is_root();
    let mut meta: BTreeMap<String, Meta> = BTreeMap::new();
    for l in &p.layers {
        let err = |source| Error::Unpack { layer: l.name.clone(), arch: p.arch, source };
        let file = fs_err::File::open(&l.path).map_err(err)?;
        let mut archive = tar::Archive::new(crate::layer::decoder(file, &l.info.media_type).map_err(err)?);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(is_root);
        archive.set_overwrite(true);
        archive.set_unpack_xattrs(false);
        for entry in archive.entries().map_err(err)? {
            let mut entry = entry.map_err(err)?;
            let raw =
                entry.path().map_err(err)?.to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
            let (parent, name) = raw.rsplit_once('/').unwrap_or(("", &raw));
            if name == ".wh..wh..opq" {
                let dir = root.join(parent);
                for e in fs_err::read_dir(&dir).into_iter().flatten().flatten() {
                    remove(&e.path());
                }
                let prefix = format!("{parent}/");
                meta.retain(|k, _| !k.starts_with(&prefix));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = if parent.is_empty() { hidden.to_string() } else { format!("{parent}/{hidden}") };
                remove(&root.join(&target));
                let prefix = format!("{target}/");
                meta.retain(|k, _| k != &target && !k.starts_with(&prefix));
                continue;
            }
            let h = entry.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => "dir",
                tar::EntryType::Symlink => "symlink",
                _ => "file",
            };
            let m = Meta {
                kind,
                mode: h.mode().map_err(err)? & 0o7777,
                uid: h.uid().map_err(err)?,
                gid: h.gid().map_err(err)?,
            };
            // A directory mode without owner write would stop the unpacking of its contents.
            if kind != "dir" {
                let target = root.join(&raw);
                if target.symlink_metadata().is_ok_and(|md| !md.is_dir()) {
                    let _ = fs_err::remove_file(&target);
                }
            }
            entry.unpack_in(root).map_err(err)?;
            if kind == "dir" {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs_err::set_permissions(root.join(&raw), std::fs::Permissions::from_mode(m.mode | 0o700));
            }
            meta.insert(raw, m);
        }
    }
    Ok(meta)
}

fn remove(p: &Path) {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            let _ = fs_err::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs_err::remove_file(p);
        }
        Err(_) => {}
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn rel(path: &str) -> String {
    path.trim_start_matches('/').trim_end_matches('/').to_string()
}

/// `name:x:id:…` lines of the image's `/etc/passwd` or `/etc/group`: name → id.
fn ids(root: &Path, file: &str) -> BTreeMap<String, u64> {
    let text = fs_err::read_to_string(root.join(file)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

fn check(
    t: &TestSpec,
    p: &PlatformImage,
    root: &Path,
    meta: &BTreeMap<String, Meta>,
    config: &serde_json::Value,
) -> (Status, String) {
    let pass = |d: String| (Status::Passed, d);
    let fail = |d: String| (Status::Failed, d);
    match &t.check {
        Check::Exists { path, kind, mode, owner, group, contains } => {
            let Some(m) = meta.get(&rel(path)) else {
                return fail(format!("{path} is not in the image"));
            };
            if let Some(k) = kind
                && k != m.kind
            {
                return fail(format!("{path} is a {}, not a {k}", m.kind));
            }
            if let Some(want) = mode
                && *want != m.mode
            {
                return fail(format!("{path} has mode {:04o}, not {want:04o}", m.mode));
            }
            for (who, wanted, have, file) in
                [("owner", owner, m.uid, "etc/passwd"), ("group", group, m.gid, "etc/group")]
            {
                let Some(w) = wanted else { continue };
                let id = w.parse::<u64>().ok().or_else(|| ids(root, file).get(w).copied());
                match id {
                    None => return fail(format!("{who} `{w}` is not in the image's /{file}")),
                    Some(id) if id != have => return fail(format!("{path}'s {who} is {have}, not {w} ({id})")),
                    Some(_) => {}
                }
            }
            if let Some(text) = contains {
                let bytes = fs_err::read(root.join(rel(path))).unwrap_or_default();
                if !String::from_utf8_lossy(&bytes).contains(text.as_str()) {
                    return fail(format!("{path} does not contain {text:?}"));
                }
            }
            pass(format!("{path}: {} {:04o} {}:{}", m.kind, m.mode, m.uid, m.gid))
        }
        Check::Absent { path } => match meta.get(&rel(path)) {
            Some(m) => fail(format!("{path} is in the image ({})", m.kind)),
            None => pass(format!("{path} is not in the image")),
        },
        Check::NonRoot => {
            let user = config["config"]["User"].as_str().unwrap_or("");
            let name = user.split(':').next().unwrap_or("");
            let uid = name.parse::<u64>().ok().or_else(|| ids(root, "etc/passwd").get(name).copied());
            match uid {
                _ if name.is_empty() => fail("the image sets no user: it runs as root".into()),
                Some(0) => fail(format!("the user `{user}` is root")),
                None => fail(format!("the user `{name}` is not in the image's /etc/passwd")),
                Some(uid) => pass(format!("runs as {user} (uid {uid})")),
            }
        }
        Check::MaxSize { bytes } => {
            let size: u64 = p.layers.iter().map(|l| l.info.size).sum();
            let human = crate::model::text::human;
            if size <= *bytes {
                pass(format!("{} of at most {}", human(size), human(*bytes)))
            } else {
                fail(format!("{} is more than {}", human(size), human(*bytes)))
            }
        }
        Check::Run { argv, exit, output } => run_command(p.arch, root, config, argv, *exit, output.as_deref()),
    }
}

/// The qemu-user program for `arch`, by the name Debian's qemu-user-static gives it.
fn qemu_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "qemu-x86_64-static",
        Arch::Arm64 => "qemu-aarch64-static",
        Arch::ArmV7 | Arch::ArmV6 => "qemu-arm-static",
        Arch::I386 => "qemu-i386-static",
        Arch::Ppc64le => "qemu-ppc64le-static",
        Arch::S390x => "qemu-s390x-static",
        Arch::Riscv64 => "qemu-riscv64-static",
    }
}

fn which(program: &str, path: &str, root: Option<&Path>) -> Option<PathBuf> {
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let inside = PathBuf::from(dir).join(program);
        let on_disk = match root {
            Some(r) => r.join(inside.strip_prefix("/").unwrap_or(&inside)),
            None => inside.clone(),
        };
        if on_disk.exists() || on_disk.symlink_metadata().is_ok() {
            return Some(inside);
        }
    }
    None
}

fn run_command(
    arch: Arch,
    root: &Path,
    config: &serde_json::Value,
    argv: &[String],
    want_exit: i32,
    want_output: Option<&str>,
) -> (Status, String) {
    let not_run = |d: String| (Status::NotRun, d);
    if !is_root() {
        return not_run("chroot needs root".into());
    }
    let env: Vec<(String, String)> = config["config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", |(_, v)| v.as_str());
    // qemu-user does not search PATH: name the program by its path in the image.
    let program = if argv[0].starts_with('/') {
        PathBuf::from(&argv[0])
    } else {
        match which(&argv[0], path, Some(root)) {
            Some(p) => p,
            None => return (Status::Failed, format!("`{}` is not on the image's PATH ({path})", argv[0])),
        }
    };
    if let Err(e) = minimal_dev(root) {
        return not_run(format!("cannot make /dev/null and friends in the root: {e}"));
    }
    // What chroot runs: the program and its arguments, behind qemu-user for another arch.
    let mut line: Vec<String> =
        std::iter::once(program.display().to_string()).chain(argv[1..].iter().cloned()).collect();
    let foreign = Some(arch) != Arch::host();
    if foreign {
        // qemu-user runs ELF files: a script goes to its interpreter, as the kernel would send
        // it. (Without binfmt_misc, programs a command starts run natively, and fail.)
        if let Some((interp, arg)) = shebang(&in_root(root, &program)) {
            line.splice(0..0, std::iter::once(interp).chain(arg));
        }
        let qemu = qemu_name(arch);
        let Some(found) = which(qemu, &std::env::var("PATH").unwrap_or_default(), None) else {
            return not_run(format!("{qemu} is not installed (Debian package qemu-user-static)"));
        };
        let copied = {
            let _writing = FORKING.read().unwrap_or_else(|e| e.into_inner());
            fs_err::copy(&found, root.join(".assemble-qemu"))
        };
        if let Err(e) = copied {
            return not_run(format!("cannot copy {qemu} into the root: {e}"));
        }
        line.insert(0, "/.assemble-qemu".into());
    }
    let user = config["config"]["User"].as_str().unwrap_or("").to_string();
    let spec = if user.is_empty() {
        "0:0".to_string()
    } else {
        let (u, g) = user.split_once(':').map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        let passwd = ids(root, "etc/passwd");
        let uid = u.parse::<u64>().ok().or_else(|| passwd.get(u).copied()).unwrap_or(0);
        let gid = match g {
            Some(g) => g.parse::<u64>().ok().or_else(|| ids(root, "etc/group").get(g).copied()).unwrap_or(0),
            None => primary_gid(root, u).unwrap_or(uid),
        };
        format!("{uid}:{gid}")
    };
    // Found on our PATH: the child's environment is the image's.
    let Some(chroot) = which("chroot", &std::env::var("PATH").unwrap_or_default(), None) else {
        return not_run("chroot is not installed".into());
    };
    // In its own mount and PID namespaces when unshare can make them, with /proc mounted,
    // as a container runtime gives it; else plain chroot.
    let unshare = which("unshare", &std::env::var("PATH").unwrap_or_default(), None);
    let mut cmd = match &unshare {
        Some(u) if fs_err::create_dir_all(root.join("proc")).is_ok() => {
            let mut c = std::process::Command::new(u);
            c.args(["--mount", "--pid", "--fork"]).arg(format!("--mount-proc={}", root.join("proc").display()));
            c.arg(&chroot);
            c
        }
        _ => std::process::Command::new(&chroot),
    };
    cmd.arg(format!("--userspec={spec}")).arg(root).args(&line);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(std::process::Stdio::null());
    let label = if foreign { "chroot + qemu" } else { "chroot" };
    let owner = spec.split_once(':').map_or((0, 0), |(u, g)| (u.parse().unwrap_or(0), g.parse().unwrap_or(0)));
    let (status, text) = match output_with_timeout(cmd, Duration::from_secs(120), &root.join(".assemble-output"), owner)
    {
        Ok(o) => o,
        Err(e) => return (Status::Failed, format!("{label}: {e}")),
    };
    let code = status.code().unwrap_or(-1);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    if code != want_exit {
        return (Status::Failed, format!("{label}: exit {code}, expected {want_exit}: {}", text.trim()));
    }
    if let Some(w) = want_output
        && !text.contains(w)
    {
        return (Status::Failed, format!("{label}: the output does not contain {w:?}: {}", text.trim()));
    }
    (Status::Passed, format!("{label}, exit {code}: {first}"))
}

/// `/dev/null`, `zero`, `random`, `urandom` and the `/proc/self/fd` links in the root, as a
/// runtime provides them.
fn minimal_dev(root: &Path) -> std::io::Result<()> {
    let dev = root.join("dev");
    fs_err::create_dir_all(&dev)?;
    for (name, minor) in [("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)] {
        let path = dev.join(name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
        // SAFETY: a valid NUL-terminated path; mknod only reads it.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(name);
        if path.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(target, path)?;
        }
    }
    Ok(())
}

/// Where `path` of the image is on disk under `root`, following the image's symlinks as the
/// chroot would (an absolute target is relative to `root`, never the host's).
fn in_root(root: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut todo: Vec<std::ffi::OsString> =
        path.components().rev().filter(|c| matches!(c, Component::Normal(_))).map(|c| c.as_os_str().into()).collect();
    let mut at = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&part);
        match fs_err::read_link(root.join(&next)) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    at = PathBuf::new();
                }
                todo.extend(target.components().rev().filter_map(|c| match c {
                    Component::Normal(n) => Some(n.into()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                }));
            }
            _ => at = next,
        }
    }
    root.join(at)
}

/// `#!INTERPRETER [ARG]` of a script in the image.
fn shebang(file: &Path) -> Option<(String, Option<String>)> {
    let mut head = [0u8; 256];
    let n = fs_err::File::open(file).and_then(|mut f| f.read(&mut head)).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let first = text.strip_prefix("#!")?.lines().next()?.trim().to_string();
    let (interp, arg) = first.split_once(char::is_whitespace).map_or((first.as_str(), None), |(i, a)| (i, Some(a)));
    Some((interp.to_string(), arg.map(|a| a.trim().to_string()).filter(|a| !a.is_empty())))
}

fn primary_gid(root: &Path, user: &str) -> Option<u64> {
    let text = fs_err::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && (f[0] == user || f[2] == user)).then(|| f[3].parse().ok()).flatten()
    })
}

/// Runs `cmd` with its stdout and stderr in one file owned by the command's user (`uid:gid`),
/// so that a program reopening `/dev/stdout` can, as under a container runtime.
fn output_with_timeout(
    mut cmd: std::process::Command,
    limit: Duration,
    output: &Path,
    owner: (u32, u32),
) -> std::io::Result<(std::process::ExitStatus, String)> {
    let file = fs_err::OpenOptions::new().create(true).truncate(true).write(true).open(output)?.into_parts().0;
    std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))?;
    cmd.stdout(file.try_clone()?).stderr(file);
    let mut child = {
        let _forking = FORKING.write().unwrap_or_else(|e| e.into_inner());
        cmd.spawn()?
    };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!("still running after {} s; killed", limit.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&fs_err::read(output)?).into_owned();
    let _ = fs_err::remove_file(output);
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs_err::create_dir_all(root.join("opt/tool")).unwrap();
        fs_err::create_dir_all(root.join("usr/local/bin")).unwrap();
        fs_err::write(root.join("opt/tool/run"), "#!/bin/bash\n").unwrap();
        std::os::unix::fs::symlink("/opt/tool/run", root.join("usr/local/bin/abs")).unwrap();
        std::os::unix::fs::symlink("../../../opt/tool/run", root.join("usr/local/bin/rel")).unwrap();
        std::os::unix::fs::symlink("usr/local", root.join("local")).unwrap();
        // A link out of the root stays in it, as under chroot.
        std::os::unix::fs::symlink("/../../../etc/passwd", root.join("escape")).unwrap();
        let want = root.join("opt/tool/run");
        assert_eq!(in_root(root, Path::new("/usr/local/bin/abs")), want);
        assert_eq!(in_root(root, Path::new("/usr/local/bin/rel")), want);
        assert_eq!(in_root(root, Path::new("/local/bin/abs")), want);
        assert_eq!(in_root(root, Path::new("/escape")), root.join("etc/passwd"));
        assert_eq!(shebang(&in_root(root, Path::new("/local/bin/rel"))), Some(("/bin/bash".into(), None)));
    }
}
