//! What a run reports as it goes, for a caller that shows it (the CLI's
//! progress bar). The engine never draws anything itself.

/// One stage of a run over N targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Observing and planning every target (reads only).
    Planning,
    /// The harm-stopping steps of every target.
    Containing,
    /// Every other step (evidence, secrets, tags).
    OtherSteps,
    /// Reading AWS back.
    Verifying,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Planning => "planning",
            Stage::Containing => "contained",
            Stage::OtherSteps => "evidence and other steps",
            Stage::Verifying => "verified",
        }
    }
}

/// Told when a stage starts (with how many targets it covers) and each
/// time one target is through it. Called from concurrent target futures.
pub trait Progress: Send + Sync {
    fn stage(&self, stage: Stage, targets: usize);
    fn target_done(&self);
    /// The stage's number of targets is now known to be `targets` (a
    /// selection streamed from the region's listing starts with a bound).
    fn set_total(&self, _targets: usize) {}
}

/// Nobody is watching.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: Stage, _: usize) {}
    fn target_done(&self) {}
}
