//! Running OCF resource agents: `AGENT start|stop|monitor|meta-data` with
//! the OCF environment (`OCF_ROOT`, `OCF_RESOURCE_INSTANCE`,
//! `OCF_RESKEY_<param>`, `OCF_RESKEY_CRM_meta_timeout`), started the way
//! exec resource scripts are (own process group, output with timestamps in
//! the resource's log, the group killed at the timeout). The meaning of the
//! return codes is the brain's (`understudy_brain::resource::ocf::outcome`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::{outcome, split_agent, MetaParameter, OcfConfig, OcfRc, Outcome};
use crate::resource::exec::driver::{describe_status, spawn_in_group};
use crate::resource::owned;

/// Longest meta-data accepted from an agent, bytes.
const MAX_META_DATA: usize = 1 << 20;
/// How long `meta-data` may take (the agents advise 5 s).
pub const META_DATA_TIMEOUT: Duration = Duration::from_secs(10);

/// One agent, ready to run for one instance.
#[derive(Debug, Clone)]
pub struct Agent {
    /// `provider:type`, for messages.
    pub name: String,
    pub path: PathBuf,
    /// `OCF_RESOURCE_INSTANCE`.
    instance: String,
    env: Vec<(String, String)>,
    log: PathBuf,
}

/// The agent's file: `ROOT/resource.d/PROVIDER/TYPE`.
pub fn agent_path(root: &str, agent: &str) -> Result<PathBuf, String> {
    let (provider, kind) =
        split_agent(agent).ok_or_else(|| format!("\"{agent}\" is not PROVIDER:TYPE"))?;
    Ok(Path::new(root).join("resource.d").join(provider).join(kind))
}

impl Agent {
    /// `instance` is `OCF_RESOURCE_INSTANCE`: the resource's name, which
    /// agents use to name their state (the resource and a monitor of it
    /// share it).
    pub fn new(
        agent: &str,
        params: &BTreeMap<String, String>,
        root: &str,
        instance: &str,
        log: PathBuf,
    ) -> Result<Agent, String> {
        let path = agent_path(root, agent)?;
        let (provider, kind) = split_agent(agent).unwrap_or_default();
        let mut env = vec![
            ("OCF_ROOT".to_string(), root.to_string()),
            ("OCF_RA_VERSION_MAJOR".to_string(), "1".to_string()),
            ("OCF_RA_VERSION_MINOR".to_string(), "1".to_string()),
            ("OCF_RESOURCE_INSTANCE".to_string(), instance.to_string()),
            ("OCF_RESOURCE_PROVIDER".to_string(), provider.to_string()),
            ("OCF_RESOURCE_TYPE".to_string(), kind.to_string()),
        ];
        env.extend(
            params
                .iter()
                .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.clone())),
        );
        Ok(Agent {
            name: format!("{provider}:{kind}"),
            path,
            instance: instance.to_string(),
            env,
            log,
        })
    }

    pub fn for_resource(c: &OcfConfig, instance: &str, log: PathBuf) -> Result<Agent, String> {
        Agent::new(&c.agent, &c.params, c.root(), instance, log)
    }

    /// Runs `action`; its return code, or why there is none (the agent
    /// could not run, or it ran out of time and its group was killed).
    pub async fn run(&self, action: &str, timeout: Duration) -> Result<OcfRc, String> {
        let mut env = self.env.clone();
        env.push((
            "OCF_RESKEY_CRM_meta_timeout".to_string(),
            timeout.as_millis().to_string(),
        ));
        let mut s = spawn_in_group(
            &self.path,
            &[action.to_string()],
            &env,
            action,
            Some(&self.log),
        )
        .await
        .map_err(|e| format!("ocf:{}: {e}", self.name))?;
        let status = s
            .wait_within(timeout, &format!("ocf:{} {action}", self.name))
            .await?;
        match status.code() {
            Some(c) => Ok(OcfRc::from_code(c)),
            None => Err(format!(
                "ocf:{} {action}: {}",
                self.name,
                describe_status(status)
            )),
        }
    }

    /// Runs `action` and asks that it did what the action means.
    async fn act(&self, action: &str, timeout: Duration) -> Result<(), String> {
        let rc = self.run(action, timeout).await?;
        match outcome(action, rc) {
            Outcome::Done => Ok(()),
            _ => Err(format!(
                "ocf:{} {action} failed: {}",
                self.name,
                rc.describe()
            )),
        }
    }

    /// Starts the instance, written down first in the ownership records
    /// so that the guardian stops it (with `stop_timeout`) should the
    /// daemon die holding it.
    pub async fn start(&self, timeout: Duration, stop_timeout: Duration) -> Result<(), String> {
        owned::record_ocf(
            &self.instance,
            format!("{} {}", self.name, self.instance),
            self.path.display().to_string(),
            self.env.clone(),
            stop_timeout.as_secs() as u32,
        )
        .await;
        self.act("start", timeout).await
    }

    /// Stops the instance; struck off the records once stopped.
    pub async fn stop(&self, timeout: Duration) -> Result<(), String> {
        self.act("stop", timeout).await?;
        owned::forget_ocf(&self.instance).await;
        Ok(())
    }

    /// The monitor action's verdict, with the code for messages.
    pub async fn monitor(&self, timeout: Duration) -> Result<(Outcome, OcfRc), String> {
        let rc = self.run("monitor", timeout).await?;
        Ok((outcome("monitor", rc), rc))
    }
}

/// The parameters an agent declares in its meta-data (blocking: `config
/// check` and the daemon's startup only).
pub fn meta_data(root: &str, agent: &str) -> Result<Vec<MetaParameter>, String> {
    let path = agent_path(root, agent)?;
    let shown = path.display();
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "agent {agent} is not installed ({shown} does not exist; Debian: apt install resource-agents)"
        ),
        _ => format!("agent {agent}: {shown}: {e}"),
    })?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("agent {agent}: {shown} is not an executable file"));
    }
    let mut child = std::process::Command::new(&path)
        .arg("meta-data")
        .env("OCF_ROOT", root)
        .env("OCF_RESOURCE_INSTANCE", "meta-data")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("agent {agent}: cannot run {shown}: {e}"))?;
    let mut stdout = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_META_DATA as u64 + 1).read_to_end(&mut out);
        }
        let _ = tx.send(out);
    });
    let out = match rx.recv_timeout(META_DATA_TIMEOUT) {
        Ok(out) => out,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "agent {agent}: meta-data gave no answer within {} s",
                META_DATA_TIMEOUT.as_secs()
            ));
        }
    };
    let _ = reader.join();
    let _ = child.kill();
    let status = child
        .wait()
        .map_err(|e| format!("agent {agent}: meta-data: {e}"))?;
    if !status.success() {
        return Err(format!(
            "agent {agent}: meta-data failed: {}",
            describe_status(status)
        ));
    }
    if out.len() > MAX_META_DATA {
        return Err(format!(
            "agent {agent}: meta-data is larger than {MAX_META_DATA} bytes"
        ));
    }
    let text = String::from_utf8_lossy(&out);
    parse_meta_data(&text).map_err(|e| format!("agent {agent}: meta-data: {e}"))
}

/// The `<parameters>` of an agent's meta-data XML.
pub fn parse_meta_data(xml: &str) -> Result<Vec<MetaParameter>, String> {
    let options = roxmltree::ParsingOptions {
        // The agents' meta-data names the OCF DTD.
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "resource-agent" {
        return Err(format!(
            "<{}> where <resource-agent> was expected",
            root.tag_name().name()
        ));
    }
    let params = root
        .children()
        .filter(|n| n.has_tag_name("parameters"))
        .flat_map(|p| p.children().filter(|n| n.has_tag_name("parameter")))
        .filter_map(|p| {
            Some(MetaParameter {
                name: p.attribute("name")?.to_string(),
                required: matches!(p.attribute("required"), Some("1" | "true" | "yes")),
            })
        })
        .collect();
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_gives_the_parameters_and_which_are_required() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="IPaddr2" version="1.0">
<version>1.0</version>
<parameters>
<parameter name="ip" unique="1" required="1"><content type="string"/></parameter>
<parameter name="cidr_netmask"><content type="string" default=""/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/></actions>
</resource-agent>"#;
        assert_eq!(
            parse_meta_data(xml).unwrap(),
            [
                MetaParameter {
                    name: "ip".into(),
                    required: true
                },
                MetaParameter {
                    name: "cidr_netmask".into(),
                    required: false
                },
            ]
        );
        assert!(parse_meta_data("<html/>").is_err());
        assert!(parse_meta_data("not xml").is_err());
    }

    #[test]
    fn the_agent_file_is_under_resource_d() {
        assert_eq!(
            agent_path("/usr/lib/ocf", "heartbeat:Dummy").unwrap(),
            PathBuf::from("/usr/lib/ocf/resource.d/heartbeat/Dummy")
        );
        assert!(agent_path("/usr/lib/ocf", "heartbeat:../x").is_err());
    }
}
