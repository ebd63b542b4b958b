//! Forced stop drivers, one per method of
//! [`crate::model::forced_stop::ForcedStopMethod`] (the settings live in the
//! brain, which decides when a silent server is stopped by force).

use std::path::Path;
use std::time::Duration;

use crate::model::bmc::BmcConfig;
use crate::model::forced_stop::{ForcedStopConfig, ForcedStopMethod};
use crate::resource::exec::driver::{self as exec_driver, Script};

/// Stops `server` by force; Ok when the method says it is off.
/// `base_dir`: the configuration file's folder (relative script paths);
/// the script's output goes to `STATE/log/forced-stop.log`. `bmc`: the
/// server's BMC settings (method `Bmc`).
pub async fn run(
    config: &ForcedStopConfig,
    base_dir: &Path,
    state_dir: &Path,
    local: &str,
    server: &str,
    bmc: Option<BmcConfig>,
) -> Result<(), String> {
    let timeout = Duration::from_secs(config.timeout_secs.into());
    match &config.method {
        ForcedStopMethod::Script(s) => {
            let script = Script {
                path: base_dir.join(&s.path),
                label: "forcedstop",
                env: vec![
                    ("CLP_SERVER_DOWN".into(), server.to_string()),
                    ("CLP_SERVER_LOCAL".into(), local.to_string()),
                    ("CLP_FORCESTOP_MODE".into(), "1".into()),
                ],
                timeout,
                log: state_dir.join("log").join("forced-stop.log"),
            };
            exec_driver::run_sync(&script).await
        }
        ForcedStopMethod::Bmc => crate::heartbeat::bmc::forced_stop(server, bmc, timeout).await,
    }
}
