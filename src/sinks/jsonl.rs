//! The JSON-lines sink of the live service: alerts (`kmswatch.alert/v1`) to stdout or appended to
//! a file, on a blocking thread of its own, flushed whenever its queue is empty.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};

use tokio::sync::mpsc;
use tracing::error;

use super::{count, Outcome, SinkError, SinkMsg};
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

/// Writes until the queue closes, then flushes.
pub(super) fn run(mut out: Out, mut rx: mpsc::Receiver<SinkMsg>, metrics: &Metrics) {
    while let Some(msg) = rx.blocking_recv() {
        write(&mut out, msg, metrics);
        while let Ok(msg) = rx.try_recv() {
            write(&mut out, msg, metrics);
        }
        metrics
            .alert_queue_depth
            .with_label_values(&["jsonl"])
            .set(rx.len() as i64);
        if let Err(error) = out.flush() {
            error!(%error, "flushing the JSON-lines sink");
        }
    }
    if let Err(error) = out.flush() {
        error!(%error, "flushing the JSON-lines sink");
    }
}

fn write(out: &mut Out, msg: SinkMsg, metrics: &Metrics) {
    let SinkMsg::Alert(a) = msg else { return };
    match out.write(&a) {
        Ok(()) => count(metrics, "jsonl", Outcome::Ok, 1),
        Err(error) => {
            count(metrics, "jsonl", Outcome::Failed, 1);
            error!(%error, rule = %a.rule, "writing an alert to the JSON-lines sink");
        }
    }
}
