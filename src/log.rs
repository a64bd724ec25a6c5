//! Structured logging: `term` for people, `json` for machines.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use slog::{o, Drain, Level, Logger};

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    Term,
    /// One JSON object per line on stderr.
    Json,
}

/// A log level given on the command line (`error`, `warn`, `info`, `debug`, `trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(pub Level);

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Level::from_str(s).map(LogLevel).map_err(|()| {
            format!("unknown log level {s:?}; expected one of critical, error, warn, info, debug, trace")
        })
    }
}

/// The level of a running logger, which can be changed while it runs (`PUT /v1/log`).
#[derive(Debug, Clone)]
pub struct LevelControl(Arc<AtomicUsize>);

impl LevelControl {
    /// A control starting at `level`.
    pub fn new(level: Level) -> Self {
        LevelControl(Arc::new(AtomicUsize::new(level.as_usize())))
    }

    /// The level now.
    pub fn level(&self) -> Level {
        Level::from_usize(self.0.load(Ordering::Relaxed)).unwrap_or(Level::Info)
    }

    /// Logs from now on at `level` and above.
    pub fn set(&self, level: Level) {
        self.0.store(level.as_usize(), Ordering::Relaxed);
    }
}

/// Passes on the records at the control's level or above.
struct DynamicFilter<D> {
    drain: D,
    level: LevelControl,
}

impl<D: Drain> Drain for DynamicFilter<D> {
    type Ok = Option<D::Ok>;
    type Err = D::Err;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<Self::Ok, Self::Err> {
        if record.level().is_at_least(self.level.level()) {
            self.drain.log(record, values).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Builds the process logger.
pub fn logger(format: LogFormat, level: LogLevel) -> Logger {
    logger_with_control(format, level).0
}

/// Builds the process logger, with the control of its level.
pub fn logger_with_control(format: LogFormat, level: LogLevel) -> (Logger, LevelControl) {
    let control = LevelControl::new(level.0);
    let drain = match format {
        LogFormat::Term => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            slog_term::FullFormat::new(decorator).build().fuse().boxed()
        }
        LogFormat::Json => slog_json::Json::new(std::io::stderr())
            .add_default_keys()
            .set_flush(true)
            .build()
            .fuse()
            .boxed(),
    };
    let filtered = DynamicFilter { drain, level: control.clone() };
    let drain = slog_async::Async::new(filtered.fuse())
        .chan_size(65_536)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build()
        .fuse();
    (Logger::root(drain, o!()), control)
}

trait BoxedDrain {
    fn boxed(self) -> Box<dyn Drain<Ok = (), Err = slog::Never> + Send>;
}

impl<D: Drain<Ok = (), Err = slog::Never> + Send + 'static> BoxedDrain for D {
    fn boxed(self) -> Box<dyn Drain<Ok = (), Err = slog::Never> + Send> {
        Box::new(self)
    }
}
