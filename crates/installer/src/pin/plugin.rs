//! The Helm 4 post-renderer plugin (`postrenderer/v1`, subprocess runtime) that runs
//! `installer post-render`: Helm 4 takes post-renderers only as plugins, by name, from
//! `$HELM_PLUGINS`.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The plugin's name, as given to `helm --post-renderer`.
pub const NAME: &str = "messenger-pin";

/// Why the plugin cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Helm expands `$VAR` in a plugin's command and arguments, so a `$` would be changed.
    #[error("{0:?} contains '$', which helm would expand in a plugin command")]
    Dollar(String),
    /// The manifest does not serialise.
    #[error("writing the plugin manifest")]
    Yaml(#[source] serde_norway::Error),
    /// Writing the plugin directory failed.
    #[error("writing {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    api_version: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    name: &'a str,
    version: &'a str,
    runtime: &'a str,
    runtime_config: RuntimeConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig<'a> {
    platform_command: Vec<Command<'a>>,
}

#[derive(Serialize)]
struct Command<'a> {
    command: &'a str,
    args: &'a [String],
}

/// Writes the plugin into `plugins` (the directory to give helm as `$HELM_PLUGINS`): helm will
/// run `program ARGS...` with the rendered manifests on stdin.
pub fn write(plugins: &Path, program: &Path, args: &[String]) -> Result<(), PluginError> {
    let program = program.to_string_lossy();
    for text in std::iter::once(program.as_ref()).chain(args.iter().map(String::as_str)) {
        if text.contains('$') {
            return Err(PluginError::Dollar(text.to_string()));
        }
    }
    let manifest = Manifest {
        api_version: "v1",
        kind: "postrenderer/v1",
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        runtime: "subprocess",
        runtime_config: RuntimeConfig {
            platform_command: vec![Command {
                command: &program,
                args,
            }],
        },
    };
    let dir = plugins.join(NAME);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PluginError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let file = dir.join("plugin.yaml");
    let yaml = serde_norway::to_string(&manifest).map_err(PluginError::Yaml)?;
    std::fs::write(&file, yaml).map_err(io(&file))
}
