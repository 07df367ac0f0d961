//! The store items of campaign email: audience members, a send's state and checkpoints, each
//! recipient's delivery record, suppressed addresses.

pub mod audience;
pub mod delivery;
pub mod send;
pub mod suppression;
pub mod tally;
