//! Connecting to the API server: `--kubeconfig`, else the pod's ServiceAccount, else
//! whatever `kube::Config::infer` finds.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Builds a client. `kubeconfig` may name several files joined with `:` (as in
/// `KUBECONFIG`), merged in order. The error is one line; every failure here is a
/// configuration problem (exit 64).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(paths) => from_files(paths).await?,
        None => match Config::incluster() {
            Ok(c) => c,
            Err(incluster) => Config::infer().await.map_err(|infer| {
                format!(
                    "no Kubernetes configuration: not in a pod ({incluster}) and no kubeconfig \
                     ({infer}); pass --kubeconfig"
                )
            })?,
        },
    };
    Client::try_from(config).map_err(|e| format!("cannot build a Kubernetes client: {e}"))
}

async fn from_files(paths: &Path) -> Result<Config, String> {
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
        let fail =
            |e: kube::config::KubeconfigError| format!("--kubeconfig {}: {e}", path.display());
        let next = Kubeconfig::read_from(&path).map_err(fail)?;
        merged = Some(match merged {
            Some(m) => m.merge(next).map_err(fail)?,
            None => next,
        });
    }
    let Some(merged) = merged else {
        return Err("--kubeconfig: no file named".to_owned());
    };
    Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("--kubeconfig {}: {e}", paths.display()))
}
