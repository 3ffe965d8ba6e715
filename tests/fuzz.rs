//! A seeded mutation fuzzer over what `assemble` reads from outside: recipe YAML, archives
//! (tar, tar.gz, zip), `.deb` packages, `.apk` packages and OCI layouts. Each target runs for
//! a few seconds (`ASSEMBLE_FUZZ_SECS`, default 3) from the real inputs in the repository and
//! `../shared/fixtures`, and every mutated input must give a result or an error that names it
//! — never a panic, and never more than a bounded amount of memory (counted by this
//! binary's allocator).
//!
//! The run's seed is printed; a failure prints the seed of the failing input and writes the
//! input under `target/fuzz-failures/`. `ASSEMBLE_FUZZ_SEED=0x…` replays a run.
#![allow(clippy::disallowed_methods)]

#[path = "it/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Live and peak heap bytes of this test process.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one fuzzed input may hold in memory at most (inputs are a few kB to a few MB).
const MEMORY_BOUND: usize = 768 << 20;

/// xorshift64*: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Byte strings that mean something to one of the formats.
const TOKENS: &[&[u8]] = &[
    b": ",
    b"\n- ",
    b"&a ",
    b"*a",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"\\0\"",
    b"99999999999999999999",
    b"../",
    b"/",
    b"\n",
    b"~",
    b"<<: *a",
    b"\"\\n\"",
    b":0:0::/:/bin/sh",
    b"\0",
    b"\xff\xff\xff\xff",
    b"ustar\0",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"././@PaxHeader",
    b"0000777",
    b"sha256:",
    b"{\"a\":",
    b"9223372036854775807",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(6) {
        let len = v.len().max(1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0u8, 0xff, b':', b'\n', b'"', b'&', b'*', b'[', b'{', b'\\', 0x7f, b'0', b'7'][rng.below(13)];
            }
            2 => {
                let i = rng.below(len).min(v.len());
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below((v.len() - i).min(64) + 1);
                v.drain(i..i + n);
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below((v.len() - i).min(256) + 1);
                let chunk: Vec<u8> = v[i..i + n].to_vec();
                let at = rng.below(v.len());
                v.splice(at..at, chunk);
            }
            5 if v.len() > 1 => {
                let keep = rng.below(v.len());
                v.truncate(keep);
            }
            _ => {
                // Overwrite a little-endian or octal number somewhere with a large one.
                if v.len() > 8 {
                    let i = rng.below(v.len() - 8);
                    v[i..i + 8].copy_from_slice(&rng.next().to_le_bytes());
                }
            }
        }
    }
    v
}

fn base_seed() -> u64 {
    match std::env::var("ASSEMBLE_FUZZ_SEED") {
        Ok(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("ASSEMBLE_FUZZ_SEED is hex"),
        Err(_) => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            (t.as_nanos() as u64) | 1
        }
    }
}

fn budget() -> Duration {
    let secs = std::env::var("ASSEMBLE_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Runs `check` on mutations of `seeds` until the time budget is spent. `check` returns
/// `Err(why)` when an input was handled wrongly (an error that does not name it); a panic
/// or an input that costs more than [`MEMORY_BOUND`] fails too. Failing inputs are written
/// under `target/fuzz-failures/`.
fn fuzz(target: &str, seeds: &[Vec<u8>], check: &dyn Fn(&[u8]) -> Result<(), String>) {
    assert!(!seeds.is_empty(), "{target}: no seeds");
    let run_seed = base_seed();
    eprintln!("fuzz {target}: seed 0x{run_seed:x} (replay with ASSEMBLE_FUZZ_SEED=0x{run_seed:x})");
    let start = Instant::now();
    let mut iterations = 0u64;
    while start.elapsed() < budget() {
        let case_seed = run_seed ^ iterations.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut rng = Rng(case_seed);
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        let used = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        let failure = match outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(Err(why)) => Some(why),
            Ok(Ok(())) if used > MEMORY_BOUND => Some(format!("used {used} bytes of memory")),
            Ok(Ok(())) => None,
        };
        if let Some(why) = failure {
            let dir = common::repo().join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{target}-{case_seed:x}"));
            std::fs::write(&file, &input).unwrap();
            panic!(
                "fuzz {target}: input {iterations} (seed 0x{case_seed:x} of run 0x{run_seed:x}) {why}; the input is in {}",
                file.display()
            );
        }
        iterations += 1;
    }
    eprintln!("fuzz {target}: {iterations} inputs, all handled");
    assert!(iterations > 0);
}

fn shared() -> PathBuf {
    common::repo().join("../shared/fixtures")
}

fn read_dir_files(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Recipes: every recipe of the repository and the fixtures, mutated; an error is a
/// diagnostic that starts with the recipe's name.
#[test]
fn recipe_reading_survives_mutated_recipes() {
    let mut seeds = read_dir_files(&common::repo().join("recipes"), ".yml");
    seeds.extend(read_dir_files(&common::repo().join("fixtures/golden"), ".yml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.yml");
    fuzz("recipe", &seeds, &|input| {
        let Ok(text) = String::from_utf8(input.to_vec()) else { return Ok(()) };
        match assemble::recipe::parse_all(&path, text) {
            Ok(_) => Ok(()),
            Err(d) => {
                let message = d.to_string();
                if message.starts_with(&format!("{}:", path.display())) {
                    Ok(())
                } else {
                    Err(format!("gave an error that does not name the recipe: {message}"))
                }
            }
        }
    });
}

/// Archives: the fixtures' tar, tar.gz, tar.xz, tar.zst and zip, mutated raw (and, for
/// tar.gz, as the tar inside recompressed), unpacked with a small limit; an error names the
/// archive.
#[test]
fn archive_reading_survives_mutated_archives() {
    use assemble::recipe::ArchiveKind;
    let fixtures = common::repo().join("fixtures/archives");
    let seeds: Vec<(ArchiveKind, Vec<u8>)> = [
        ("pkg.tar", ArchiveKind::Tar),
        ("pkg.tar.gz", ArchiveKind::TarGz),
        ("pkg.tar.xz", ArchiveKind::TarXz),
        ("pkg.tar.zst", ArchiveKind::TarZst),
        ("pkg.zip", ArchiveKind::Zip),
    ]
    .iter()
    .map(|(f, k)| (*k, std::fs::read(fixtures.join(f)).unwrap()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = assemble::store::Store::open(&dir.path().join("cache")).unwrap();
    let file = dir.path().join("input");
    let tagged: Vec<Vec<u8>> = seeds
        .iter()
        .enumerate()
        .map(|(i, (_, b))| {
            let mut v = vec![i as u8];
            v.extend_from_slice(b);
            v
        })
        .collect();
    fuzz("archive", &tagged, &|input| {
        let Some((&which, bytes)) = input.split_first() else { return Ok(()) };
        let kind = seeds[which as usize % seeds.len()].0;
        std::fs::write(&file, bytes).unwrap();
        match assemble::source::archive::unpack(&store, &file, kind, "fuzzed.archive", 32 << 20) {
            Ok(_) => Ok(()),
            Err(e) => {
                let chain = error_chain(&e);
                if chain.contains("fuzzed.archive") {
                    Ok(())
                } else {
                    Err(format!("gave an error that does not name the archive: {chain}"))
                }
            }
        }
    });
}

/// `.deb` packages: one built here with a symlink, a hard link and files, mutated; an error
/// names the package.
#[test]
fn deb_reading_survives_mutated_packages() {
    let seed = small_deb();
    let dir = tempfile::tempdir().unwrap();
    let store = assemble::store::Store::open(&dir.path().join("cache")).unwrap();
    let file = dir.path().join("p.deb");
    fuzz("deb", &[seed], &|input| {
        std::fs::write(&file, input).unwrap();
        match assemble::source::deb::unpack::read(&store, &file, "fuzzed.deb", 32 << 20) {
            Ok(_) => Ok(()),
            Err(e) => {
                let chain = error_chain(&e);
                if chain.contains("fuzzed.deb") {
                    Ok(())
                } else {
                    Err(format!("gave an error that does not name the package: {chain}"))
                }
            }
        }
    });
}

/// `.apk` packages: the real signed packages of `../shared/fixtures/apk`, mutated, read
/// against their index records and keys; an error names the package.
#[test]
fn apk_reading_survives_mutated_packages() {
    use assemble::source::apk;
    let root = shared().join("apk");
    let seeds = read_dir_files(&root.join("alpine-packages"), ".apk");
    let keys_dir = root.join("keys/alpine");
    let key_paths: Vec<PathBuf> = std::fs::read_dir(&keys_dir).unwrap().map(|e| e.unwrap().path()).collect();
    let keys = apk::Keys::load(&key_paths.iter().map(PathBuf::as_path).collect::<Vec<_>>()).unwrap();
    let record = apk::Record {
        fields: vec![('P', "strace".into()), ('V', "5.17-r0".into()), ('C', "Q18y9jy9MgtvQFXTntDQ3if2axAkk=".into())],
    };
    let dir = tempfile::tempdir().unwrap();
    let store = assemble::store::Store::open(&dir.path().join("cache")).unwrap();
    fuzz("apk", &seeds, &|input| {
        let check = |r: Result<(), String>| -> Result<(), String> {
            match r {
                Ok(()) => Ok(()),
                Err(m) if m.contains("fuzzed.apk") => Ok(()),
                Err(m) => Err(format!("gave an error that does not name the package: {m}")),
            }
        };
        let pkg = match apk::read_package(input, &record, &keys, "fuzzed.apk") {
            Ok(p) => p,
            Err(e) => return check(Err(e.to_string())),
        };
        check(apk::install::entries(&store, &pkg.data, "fuzzed.apk").map(|_| ()).map_err(|e| e.to_string()))
    });
}

/// OCI layouts: the golden fixture's image written as a layout, one of its documents or
/// blobs mutated; opening it gives the image or an error that names it.
#[test]
fn image_reading_survives_mutated_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::fixtures(tmp.path());
    common::assemble(&f, &tmp.path().join("cache"), &["build", "golden/golden.yml", "-o", "oci:../layout"], &[]).ok();
    let layout = tmp.path().join("layout");
    let mut names: Vec<PathBuf> = vec![layout.join("index.json")];
    names.extend(std::fs::read_dir(layout.join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()));
    names.sort();
    let seeds: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = (i as u32).to_le_bytes().to_vec();
            v.extend(std::fs::read(p).unwrap());
            v
        })
        .collect();
    let copy = tmp.path().join("copy");
    common::copy_dir(&layout, &copy);
    let scratch = tmp.path().join("tmp");
    fuzz("layout", &seeds, &|input| {
        if input.len() < 4 {
            return Ok(());
        }
        let which = u32::from_le_bytes(input[..4].try_into().unwrap()) as usize % names.len();
        let target = copy.join(names[which].strip_prefix(&layout).unwrap());
        std::fs::write(&target, &input[4..]).unwrap();
        let opened = assemble::oci::read::open(
            assemble::oci::read::Location::Layout { dir: &copy, reference: None, vouch: None },
            "oci:fuzzed",
            &scratch,
        );
        std::fs::copy(&names[which], &target).unwrap();
        match opened {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("oci:fuzzed") || e.to_string().contains(&copy.display().to_string()) => {
                Ok(())
            }
            Err(e) => Err(format!("gave an error that does not name the image: {e}")),
        }
    });
}

/// An error and its causes, as the command line prints them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// A small `.deb`: control and data tars with a directory, a file, a symlink and a hard link.
fn small_deb() -> Vec<u8> {
    let tar_of = |members: &[(&str, &[u8], tar::EntryType, &str)]| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, kind, link) in members {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let control = tar_of(&[("./control", b"Package: p\nVersion: 1\n", tar::EntryType::Regular, "")]);
    let data = tar_of(&[
        ("./usr/", b"", tar::EntryType::Directory, ""),
        ("./usr/bin/", b"", tar::EntryType::Directory, ""),
        ("./usr/bin/tool", b"#!/bin/sh\necho tool\n", tar::EntryType::Regular, ""),
        ("./usr/bin/alias", b"", tar::EntryType::Link, "./usr/bin/tool"),
        ("./usr/bin/link", b"", tar::EntryType::Symlink, "tool"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &data).unwrap();
    let data = gz.finish().unwrap();
    let mut out = b"!<arch>\n".to_vec();
    for (name, body) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar", control), ("data.tar.gz", data)] {
        out.extend_from_slice(
            format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, body.len()).as_bytes(),
        );
        out.extend_from_slice(&body);
        if body.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}
