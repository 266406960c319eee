//! Progress output: a spinner per host on a terminal, plain timestamped lines otherwise (CI,
//! pipes), so logs stay readable where bars would be invisible.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Reporter {
    start: Instant,
    bars: Option<(MultiProgress, Mutex<BTreeMap<String, ProgressBar>>)>,
}

impl Reporter {
    pub fn new() -> Self {
        // Plain lines under -v too: the remote commands it prints would tear the spinners.
        let tty = std::io::stderr().is_terminal()
            && std::env::var("TERM").is_ok_and(|t| t != "dumb")
            && !crate::transport::verbose();
        Reporter {
            start: Instant::now(),
            bars: tty.then(|| {
                (
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Mutex::new(BTreeMap::new()),
                )
            }),
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>6.1}s]", self.start.elapsed().as_secs_f64())
    }

    /// A line that stays: step headers, changes, warnings.
    pub fn line(&self, msg: &str) {
        let text = format!("{} {msg}", self.stamp());
        match &self.bars {
            Some((mp, _)) => {
                let _ = mp.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    pub fn step(&self, n: usize, total: usize, name: &str) {
        self.line(&format!("step {n}/{total}: {name}"));
    }

    /// Transient per-host activity: a spinner on a terminal, nothing in plain mode (the
    /// outcome is reported with `host_done`).
    pub fn host_busy(&self, host: &str, msg: &str) {
        if let Some((mp, bars)) = &self.bars {
            let mut bars = bars.lock().unwrap();
            let pb = bars.entry(host.to_string()).or_insert_with(|| {
                let pb = mp.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}").unwrap(),
                );
                pb.set_prefix(host.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                pb
            });
            pb.set_message(msg.to_string());
        }
    }

    pub fn host_done(&self, host: &str, msg: &str) {
        if let Some((_, bars)) = &self.bars
            && let Some(pb) = bars.lock().unwrap().remove(host)
        {
            pb.finish_and_clear();
        }
        self.line(&format!("  {host}: {msg}"));
    }

    pub fn clear(&self) {
        if let Some((_, bars)) = &self.bars {
            for (_, pb) in std::mem::take(&mut *bars.lock().unwrap()) {
                pb.finish_and_clear();
            }
        }
    }
}
