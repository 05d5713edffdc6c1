//! Frame times, logged at info every few seconds under `agent_desktop::perf` (for the
//! benchmark and for support: a slow PC shows here first), and the first frame's moment
//! (start-up time to a usable window).

use std::time::{Duration, Instant};

/// How often the figures are logged.
const EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct FrameStats {
    started: Instant,
    first_drawn: bool,
    since: Instant,
    /// CPU time of each frame in this period, milliseconds.
    frames: Vec<f32>,
}

impl FrameStats {
    pub fn new(started: Instant) -> FrameStats {
        FrameStats { started, first_drawn: false, since: Instant::now(), frames: Vec::new() }
    }

    /// One frame took `cpu` (eframe's measure: the app's `ui` plus tessellation and painting).
    pub fn frame(&mut self, cpu: Option<f32>) {
        if !self.first_drawn {
            self.first_drawn = true;
            tracing::info!(target: "agent_desktop::perf", since_start_ms = self.started.elapsed().as_millis() as u64, "first frame");
        }
        if let Some(cpu) = cpu {
            self.frames.push(cpu * 1000.0);
        }
        if self.since.elapsed() >= EVERY && !self.frames.is_empty() {
            if let Some((p50, p99, max)) = percentiles(&mut self.frames) {
                tracing::info!(target: "agent_desktop::perf", frames = self.frames.len(), p50_ms = p50, p99_ms = p99, max_ms = max, "frame times");
            }
            self.frames.clear();
            self.since = Instant::now();
        }
    }
}

/// (p50, p99, max) of `values`, sorted in place.
fn percentiles(values: &mut [f32]) -> Option<(f32, f32, f32)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let at = |q: f32| values[((values.len() - 1) as f32 * q).round() as usize];
    Some((at(0.5), at(0.99), *values.last()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentiles_of_frame_times() {
        let mut v: Vec<f32> = (1..=100).rev().map(|x| x as f32).collect();
        assert_eq!(super::percentiles(&mut v), Some((51.0, 99.0, 100.0)));
        assert_eq!(super::percentiles(&mut []), None);
    }
}
