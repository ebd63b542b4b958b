//! The monitor actor (being written).
