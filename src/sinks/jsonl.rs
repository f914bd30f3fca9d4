//! The JSON-lines sink of the live service: alerts (`kmswatch.alert/v1`) to stdout or appended to
//! a file, on a blocking thread of its own, flushed whenever its queue is empty.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};

use tokio::sync::mpsc;
use tracing::error;

use super::{count, Delivery, Outbox, Outcome, SinkError};
use crate::alerts::JsonLinesSink;
use crate::config::JsonlTarget;
use crate::metrics::Metrics;

pub(super) type Out = JsonLinesSink<Box<dyn Write + Send>>;

pub(super) fn open(target: &JsonlTarget) -> Result<Out, SinkError> {
    let w: Box<dyn Write + Send> = match target {
        JsonlTarget::Stdout => Box::new(BufWriter::new(std::io::stdout())),
        JsonlTarget::File(p) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| SinkError::Jsonl {
                    path: p.display().to_string(),
                    source,
                })?;
            Box::new(BufWriter::new(f))
        }
    };
    Ok(JsonLinesSink::new(w))
}

/// Writes until the queue closes, then flushes; each alert is settled in the outbox once written
/// (or failed).
pub(super) fn run(
    mut out: Out,
    mut rx: mpsc::Receiver<Delivery>,
    outbox: &Outbox,
    metrics: &Metrics,
) {
    while let Some(d) = rx.blocking_recv() {
        let mut written = vec![d.seq];
        write(&mut out, &d.json, metrics);
        while let Ok(d) = rx.try_recv() {
            write(&mut out, &d.json, metrics);
            written.push(d.seq);
        }
        if let Err(error) = out.flush() {
            error!(%error, "flushing the JSON-lines sink");
        }
        for seq in written {
            outbox.settle(seq);
        }
    }
    if let Err(error) = out.flush() {
        error!(%error, "flushing the JSON-lines sink");
    }
}

fn write(out: &mut Out, json: &str, metrics: &Metrics) {
    match out.write_json(json) {
        Ok(()) => count(metrics, "jsonl", Outcome::Ok, 1),
        Err(error) => {
            count(metrics, "jsonl", Outcome::Failed, 1);
            error!(%error, alert = %json, "writing an alert to the JSON-lines sink");
        }
    }
}
