//! Structured logging: `term` for people, `json` for machines.

use std::str::FromStr;

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

/// Builds the process logger.
pub fn logger(format: LogFormat, level: LogLevel) -> Logger {
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
    let drain = slog_async::Async::new(drain.filter_level(level.0).fuse())
        .chan_size(65_536)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build()
        .fuse();
    Logger::root(drain, o!())
}

trait BoxedDrain {
    fn boxed(self) -> Box<dyn Drain<Ok = (), Err = slog::Never> + Send>;
}

impl<D: Drain<Ok = (), Err = slog::Never> + Send + 'static> BoxedDrain for D {
    fn boxed(self) -> Box<dyn Drain<Ok = (), Err = slog::Never> + Send> {
        Box::new(self)
    }
}
