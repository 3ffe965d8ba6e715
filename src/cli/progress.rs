//! What long work looks like on a terminal: one line per kind of work (downloading, packing,
//! checking) with bytes done of the total and the rate, the command's spinner, and log lines
//! printed above them rather than through them. On a pipe, with `-q` or `--json`, there is
//! no board and nothing is drawn.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

pub struct Board {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

static BOARD: OnceLock<Board> = OnceLock::new();

/// Sets up the board when stderr is a terminal and the user asked for neither `-q` nor `--json`.
pub fn start(quiet: bool, json: bool) {
    use std::io::IsTerminal;
    if quiet || json || !std::io::stderr().is_terminal() {
        return;
    }
    let _ = BOARD.set(Board { multi: MultiProgress::new(), bars: Mutex::new(BTreeMap::new()) });
}

fn board() -> Option<&'static Board> {
    BOARD.get()
}

/// Whether anything is drawn.
pub fn shown() -> bool {
    board().is_some()
}

/// `bar` drawn on the board (under the byte counts), or hidden when there is no board.
pub fn add(bar: ProgressBar) -> ProgressBar {
    match board() {
        Some(b) => b.multi.add(bar),
        None => ProgressBar::hidden(),
    }
}

/// Runs `f` (which writes to the terminal) with the board taken away and drawn again after.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match board() {
        Some(b) => b.multi.suspend(f),
        None => f(),
    }
}

/// Takes the board off the terminal, for the command's results and errors.
pub fn clear() {
    if let Some(b) = board() {
        for bar in std::mem::take(&mut *b.bars.lock().unwrap_or_else(|e| e.into_inner())).into_values() {
            bar.finish_and_clear();
        }
        let _ = b.multi.clear();
    }
}

fn bar(b: &Board, phase: &str) -> ProgressBar {
    let mut bars = b.bars.lock().unwrap_or_else(|e| e.into_inner());
    bars.entry(phase.to_string())
        .or_insert_with(|| {
            let bar = b.multi.insert(0, ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{msg:<11} {bytes:>10} of {total_bytes:<10} {bytes_per_sec:>12}")
                    .expect("template"),
            );
            bar.set_message(phase.to_string());
            bar
        })
        .clone()
}

/// Turns the library's progress events (`assemble::progress`) into the board's byte counts.
pub struct Layer;

#[derive(Default)]
struct Fields {
    phase: Option<String>,
    total: u64,
    done: u64,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "phase" {
            self.phase = Some(value.to_string());
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "total" => self.total = value,
            "done" => self.done = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let Some(b) = board() else { return };
        let mut f = Fields::default();
        event.record(&mut f);
        let Some(phase) = f.phase else { return };
        let bar = bar(b, &phase);
        if f.total > 0 {
            bar.inc_length(f.total);
        }
        if f.done > 0 {
            // A download whose size was not announced counts toward the total as it comes.
            if bar.position() + f.done > bar.length().unwrap_or(0) {
                bar.set_length(bar.position() + f.done);
            }
            bar.inc(f.done);
        }
    }
}

/// Where log lines go: each whole line written to stderr with the board taken away first.
pub struct LogWriter;

pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            suspend(|| {
                let _ = std::io::stderr().lock().write_all(&self.0);
            });
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}
