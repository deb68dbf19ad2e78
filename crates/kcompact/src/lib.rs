//! kcompact: a deterministic model of the Linux physical page allocator, its
//! anti-fragmentation rules and memory compaction.
//!
//! The crate is pure: no I/O, no wall clock, no threads, no `unsafe`. All randomness comes
//! from one seeded [`rng::SimRng`] passed in by the caller, so the same configuration and
//! seed give the same state and the same output, byte for byte.
//!
//! Start at [`machine::Machine::boot`] with a [`layout::Layout`]; allocate and free with
//! [`machine::Machine::alloc_pages`] / [`machine::Machine::free_pages`]; print the kernel's
//! views with [`views`]; check every invariant with [`verify::verify`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alloc;
pub mod boot;
pub mod buddy;
pub mod clock;
pub mod compaction;
pub mod event;
pub mod explain;
pub mod gfp;
pub mod hugepage;
pub mod layout;
pub mod machine;
pub mod memmap;
pub mod migrate;
pub mod mmzone;
pub mod owners;
pub mod reclaim;
pub mod replay;
pub mod rng;
pub mod scenario;
pub mod size;
pub mod slowpath;
pub mod snapshot;
pub mod sysctl;
pub mod units;
pub mod verify;
pub mod views;
pub mod workload;
pub mod zone;

pub use machine::Machine;
pub use sysctl::VmConfig;
