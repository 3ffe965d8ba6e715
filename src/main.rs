//! The `assemble` binary: parse arguments, run the command, render errors.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    forget_empty_variables();
    malloc_settings();
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
    let json = cli.global.json;
    let result = cli::run(cli);
    cli::progress::clear();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            eprintln!("{}", json_error(&e));
            ExitCode::from(e.exit() as u8)
        }
        Err(e) => {
            eprint!("{}", render_error(&e));
            ExitCode::from(e.exit() as u8)
        }
    }
}

/// Two settings of glibc's allocator, so that peak memory follows what is live.
///
/// One arena: glibc gives each thread that allocates its own arena (up to eight per core),
/// and memory freed in one stays with it: a cold four-architecture Debian build peaked at
/// 184 MB of RSS with as many arenas as threads and 107 MB with two, in the same time (the
/// resolver's, the index readers', the download and the pool threads each held their own).
///
/// A fixed mmap threshold of 16 MiB: by default glibc raises the threshold to the size of
/// each mapped block of up to 32 MiB that is freed (the first architecture's package vector,
/// an xz decoder's 8 MiB window), so the next architectures' package vectors grew by doubling
/// inside the heap, and the blocks they left behind were filled with small allocations that
/// pinned the heap's top: base-files alone peaked at 61.6 MB of RSS for one architecture and
/// 77.7 MB for four; the largest set of BENCH.md's growth table at 61.6 and 76.3–81.9 MB.
/// Fixed, a vector past 16 MiB is mapped and given back whole: 61.6 / 69.8 MB and 61.6 / 66.5
/// MB, in the same time. (A fixed threshold also keeps the trim threshold at its 128 KiB.)
/// Not lower: at 256 KiB every xz decoder's window is mapped afresh, which cost a cold
/// two-architecture build 0.1–0.3 s of system time in page faults.
fn malloc_settings() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in `main`, before any other thread exists; `mallopt` only
    // sets parameters of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

/// An empty `ASSEMBLE_*` or `SOURCE_DATE_EPOCH` means unset, as a shell user expects of
/// `ASSEMBLE_JOBS= assemble …`: it is removed before anything reads it, so it neither fails
/// to parse nor stands in for a default.
fn forget_empty_variables() {
    let empty: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(k, v)| {
            v.is_empty() && k.to_str().is_some_and(|k| k.starts_with("ASSEMBLE_") || k == "SOURCE_DATE_EPOCH")
        })
        .map(|(k, _)| k)
        .collect();
    for k in empty {
        // SAFETY: the first thing `main` does, before any other thread exists.
        unsafe { std::env::remove_var(k) };
    }
}

fn init_logging(g: &cli::args::Global) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ASSEMBLE_LOG").unwrap_or_else(|_| {
        // Our own logs at the chosen level; dependencies only speak up for warnings.
        tracing_subscriber::EnvFilter::new(format!("warn,assemble={level}"))
    });
    // Progress events are drawn by the board, never printed as log lines.
    let filter = filter.add_directive(format!("{}=off", assemble::progress::TARGET).parse().expect("directive"));
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    cli::progress::start(g.quiet, g.json);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::filter_fn};
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(cli::progress::LogWriter)
        .with_ansi(color)
        .event_format(Plain)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(logs);
    if cli::progress::shown() {
        let progress = cli::progress::Layer.with_filter(filter_fn(|m| m.target() == assemble::progress::TARGET));
        registry.with(progress).init();
    } else {
        registry.init();
    }
}

/// Log lines as a person reads them: the message alone for information, and a
/// `warning:` / `debug:` prefix otherwise.
struct Plain;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        match *event.metadata().level() {
            tracing::Level::ERROR => write!(writer, "error: ")?,
            tracing::Level::WARN => write!(writer, "warning: ")?,
            tracing::Level::INFO => {}
            tracing::Level::DEBUG => write!(writer, "debug: ")?,
            tracing::Level::TRACE => write!(writer, "trace: ")?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `error: …`, the recipe snippet when there is one, `Caused by:` lines, then `hint:`.
/// The error as one JSON object on stderr, for `--json` callers: the message (with its
/// `file:line:col` for a recipe error), each cause, the hint and the exit status.
fn json_error(e: &assemble::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        let line = s.to_string();
        if line != last {
            causes.push(line.clone());
        }
        last = line;
        source = s.source();
    }
    serde_json::json!({
        "error": e.to_string(),
        "causes": causes,
        "hint": e.hint(),
        "exit": e.exit() as u8,
    })
    .to_string()
}

fn render_error(e: &assemble::Error) -> String {
    let mut out = format!("error: {e}\n");
    if let Some(snippet) = e.diagnostic().and_then(|d| d.snippet()) {
        out.push_str(&snippet);
        out.push('\n');
    }
    let mut source = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        // A wrapper that shows its cause's words says nothing new: one line for both.
        let line = s.to_string();
        if line != last {
            out.push_str(&format!("  Caused by: {line}\n"));
        }
        last = line;
        source = s.source();
    }
    if let Some(h) = e.hint() {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}
