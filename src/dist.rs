//! What a package installs beside the binary, made by the binary itself
//! from its own command line, so that the build needs nothing but cargo:
//! the manual pages (`understudy man DIR`, clap_mangen: `understudy.1` and
//! one page per subcommand, such as `understudy-group-start.1`) and the
//! shell completions (`understudy completions bash|zsh|fish`, clap_complete).
//! Both subcommands are hidden from `--help`; `tools/package` runs them.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

/// The shells completions are made for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Writes every manual page into `dir`.
pub fn man(dir: &Path) -> ExitCode {
    let made = std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::generate_to(crate::Cli::command(), dir));
    match made {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "understudy: cannot write the manual pages in {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: Shell) -> ExitCode {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = crate::Cli::command();
    // Made whole first: clap_complete panics on a failed write (a closed
    // pipe), and this reports it instead.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "understudy", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_page_for_the_command_and_each_subcommand_but_the_hidden_ones() {
        let dir = std::env::temp_dir().join(format!("us-man-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(man(&dir), ExitCode::SUCCESS);
        for page in [
            "understudy.1",
            "understudy-run.1",
            "understudy-group-start.1",
            "understudy-config-check.1",
        ] {
            let text =
                std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{page} is no manual page"
            );
        }
        let run = std::fs::read_to_string(dir.join("understudy-run.1")).expect("run page");
        assert!(
            run.contains("/etc/understudy/understudy.ron"),
            "the default configuration in understudy-run(1)"
        );
        for hidden in [
            "understudy-debug.1",
            "understudy-man.1",
            "understudy-completions.1",
        ] {
            assert!(!dir.join(hidden).exists(), "{hidden}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every name the binary answers to, as `argv[0]`.
    fn names() -> Vec<String> {
        understudy_actors::model::agent::AgentKind::ALL
            .iter()
            .map(|k| k.command().to_string())
            .chain(crate::compat::NAMES.iter().map(|n| n.to_string()))
            .collect()
    }

    #[test]
    fn the_package_and_tools_install_link_every_name_the_binary_answers_to() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let install = std::fs::read_to_string(root.join("tools/install")).expect("tools/install");
        let package_test =
            std::fs::read_to_string(root.join("tools/package-test")).expect("tools/package-test");
        let words = |text: &str| -> Vec<String> {
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect()
        };
        let (install, package_test) = (words(&install), words(&package_test));
        for name in names() {
            let link = format!(r#"{{ dest = "usr/bin/{name}", link_name = "understudy" }}"#);
            assert!(manifest.contains(&link), "no {link} in Cargo.toml");
            assert!(
                install.contains(&name),
                "tools/install does not link {name}"
            );
            assert!(
                package_test.contains(&name),
                "tools/package-test does not check {name}"
            );
        }
    }

    #[test]
    fn the_shipped_default_configuration_is_the_default_path_s_and_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        let target = crate::DEFAULT_CONFIG.trim_start_matches('/');
        assert!(
            manifest.contains(&format!(r#"["config/understudy.ron", "{target}", "644"]"#)),
            "the package does not install config/understudy.ron as {}",
            crate::DEFAULT_CONFIG
        );
        let config = crate::config_check::load(&root.join("config/understudy.ron"))
            .unwrap_or_else(|p| panic!("config/understudy.ron: {p:?}"));
        assert_eq!(config.servers.len(), 1, "one server");
        // Nothing in it shuts the machine down or runs a script it lacks.
        assert!(crate::config_check::script_problems(&config, root).is_empty());
    }
}
