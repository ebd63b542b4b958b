//! The pure model: everything the supervisor decides, with no I/O and no
//! actix. It lives in the `understudy-brain` crate; these are its modules
//! under their old paths.

pub use understudy_brain::{
    advert, agent, bmc, catalog, cluster, config, detection, forced_stop, headline, host, journal,
    ladder, membership, metrics, monitor, monitoring, partition, placement, plan, problems,
    recovery, resource, routing, state, traps, validate, validate_monitors, watchdog, web,
};
