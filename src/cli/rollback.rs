//! `assemble rollback`: an earlier shipped version made current again on each server, from
//! its store alone; `--list` shows the versions each store remembers.

use super::args::Global;
use super::publish::{ServerStore, servers};
use assemble::Error;
use assemble::ship;
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The server: [USER@]HOST[:PORT]; several, comma-separated; or @FILE, as for `ship`
    pub server: String,
    /// The image's name on the server (the recipe's name, or `ship --name`)
    pub name: String,
    /// The version to make current [default: the newest one older than the current]
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    /// List the versions each server's store remembers, and change nothing
    #[arg(long, conflicts_with = "to")]
    pub list: bool,
    #[command(flatten)]
    pub server_store: ServerStore,
}

pub fn rollback(global: &Global, args: RollbackArgs) -> Result<(), Error> {
    let fleet = servers(&args.server)?;
    let opts = args.server_store.options()?;
    let mut rows = Vec::new();
    let mut lines = String::new();
    let mut failed = Vec::new();
    for server in &fleet {
        let host = server.to_string();
        let result = if args.list {
            ship::versions(server, &args.name, &opts).map(|versions| {
                for v in &versions {
                    let mark = if v.current { " (current)" } else { "" };
                    lines.push_str(&format!(
                        "{host} {} {} {} {}{mark}\n",
                        v.name,
                        v.version,
                        v.digest,
                        v.tags.join(",")
                    ));
                }
                json!({"host": host, "versions": versions})
            })
        } else {
            ship::rollback(server, &args.name, args.to, &opts).map(|(v, report)| {
                let loaded = report.loaded.as_ref().map(|l| format!("; loaded {} into {}", l.platform, l.engine));
                tracing::info!("{host}: {} version {} is current{}", v.name, v.version, loaded.unwrap_or_default());
                lines.push_str(&format!("{host} {}:{} {} version {}\n", v.name, v.tags.first().map_or("", String::as_str), v.digest, v.version));
                json!({"host": host, "image": v.name, "version": v.version, "digest": v.digest, "tags": v.tags, "blobs_sent": report.blobs_sent, "bytes_sent": report.bytes_sent, "loaded": report.loaded})
            })
        };
        match result {
            Ok(row) => rows.push(row),
            Err(e) => {
                let e = Error::from(e);
                if !global.json {
                    eprint!("{host}: {}", crate::render_error(&e));
                }
                lines.push_str(&format!("{host} {} failed\n", args.name));
                rows.push(json!({"host": host, "image": args.name, "error": e.to_string(), "hint": e.hint(), "exit": e.exit() as u8}));
                failed.push(host);
            }
        }
    }
    global.print(&serde_json::Value::Array(rows), || lines);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Some(format!(
            "rollback failed for {} of {} server(s): {}",
            failed.len(),
            fleet.len(),
            failed.join(", ")
        )))
    }
}
