//! What a person sees while files move: bars on a terminal, one line per finished file in a
//! log, nothing with `--quiet`. Everything goes to stderr; stdout is for `--json` and tables.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Quiet,
}

impl Mode {
    pub fn choose(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

pub struct Progress {
    mode: Mode,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let (multi, overall) = if mode == Mode::Bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30.green}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            overall.set_prefix("total");
            (Some(multi), Some(overall))
        } else {
            (None, None)
        };
        Progress {
            mode,
            multi,
            overall,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Bytes still to move, and those already there (resumed).
    pub fn set_total(&self, total: u64, already: u64) {
        if let Some(overall) = &self.overall {
            overall.set_length(total);
            overall.set_position(already);
        }
    }

    pub fn file_started(&self, name: &str, size: Option<u64>, already: u64) {
        if let (Some(multi), Some(overall)) = (&self.multi, &self.overall) {
            let mut bars = self.bars.lock().expect("progress lock");
            if bars.contains_key(name) {
                return;
            }
            let bar = multi.insert_before(overall, ProgressBar::new(size.unwrap_or(0)));
            bar.set_style(
                ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes}/{total_bytes}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(name.to_string());
            bar.set_position(already);
            bars.insert(name.to_string(), bar);
        }
    }

    pub fn advance(&self, name: &str, bytes: u64) {
        if let Some(overall) = &self.overall {
            overall.inc(bytes);
            if let Some(bar) = self.bars.lock().expect("progress lock").get(name) {
                bar.inc(bytes);
            }
        }
    }

    /// Bytes counted for a file that must start over.
    pub fn rewind(&self, name: &str, bytes: u64) {
        if let Some(overall) = &self.overall {
            overall.set_position(overall.position().saturating_sub(bytes));
            if let Some(bar) = self.bars.lock().expect("progress lock").get(name) {
                bar.set_position(0);
            }
        }
    }

    /// A file is done: its bar goes, and `line` is printed (not with `--quiet`).
    pub fn file_finished(&self, name: &str, line: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{line}"),
            Mode::Bars => {
                if let Some(bar) = self.bars.lock().expect("progress lock").remove(name) {
                    bar.finish_and_clear();
                    if let Some(multi) = &self.multi {
                        multi.remove(&bar);
                    }
                }
                self.println(line);
            }
        }
    }

    /// A message for a person (not with `--quiet`).
    pub fn note(&self, line: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{line}"),
            Mode::Bars => self.println(line),
        }
    }

    fn println(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(overall) = &self.overall {
            overall.finish_and_clear();
        }
        for (_, bar) in self.bars.lock().expect("progress lock").drain() {
            bar.finish_and_clear();
        }
    }
}

/// `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
