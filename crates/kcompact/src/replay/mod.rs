//! Trace replay (issue 9): real kmem allocation traces driving the model.
//!
//! - [`parse`]: ftrace / trace-cmd / perf script text to events.

pub mod parse;
