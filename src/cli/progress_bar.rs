//! The run's progress on a terminal: targets through the current stage out
//! of all of them. Hidden when stderr is not a terminal (pipes, CI, the
//! JSON output's consumers), so nothing but the report reaches them.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::{Progress, Stage};

#[derive(Default)]
pub struct Bar {
    current: Mutex<Option<ProgressBar>>,
}

impl Progress for Bar {
    fn stage(&self, stage: Stage, targets: usize) {
        let bar = ProgressBar::with_draw_target(
            Some(u64::try_from(targets).unwrap_or(u64::MAX)),
            ProgressDrawTarget::stderr(),
        );
        // A constant template: it always parses; a plain bar if not.
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>26} [{bar:30}] {pos}/{len} targets {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(stage.label());
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn set_total(&self, targets: usize) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.as_ref() {
            bar.set_length(u64::try_from(targets).unwrap_or(u64::MAX));
            if bar.position() >= bar.length().unwrap_or(u64::MAX) {
                bar.finish_and_clear();
            }
        }
    }

    fn target_done(&self) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.as_ref() {
            bar.inc(1);
            // Cleared as soon as the stage is through, so the plan or the
            // report printed next is not drawn over.
            if bar.length().is_some_and(|len| bar.position() >= len) {
                bar.finish_and_clear();
            }
        }
    }
}
