//! Building the Kubernetes client.

use std::path::Path;

use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};

/// Why no client could be built. All of these are configuration problems (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A kubeconfig file could not be read or parsed.
    #[error("--kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: ::kube::config::KubeconfigError,
    },
    /// Neither the in-cluster config nor a default kubeconfig is usable.
    #[error(
        "no Kubernetes configuration: not in a pod ({incluster}) and no kubeconfig ({infer}); \
         pass --kubeconfig"
    )]
    Infer {
        /// Why the in-cluster config failed.
        incluster: String,
        /// Why inferring failed.
        infer: String,
    },
    /// The configuration is unusable for a client (e.g. bad TLS material).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
}

/// Builds a client from `kubeconfig` (one path, or several separated by `:` as in
/// `KUBECONFIG`, merged in order). Without one: the in-cluster config (a pod's
/// ServiceAccount), else whatever `kube::Config::infer` finds (`~/.kube/config`).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
                let err = |source| ClientError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                };
                let next = Kubeconfig::read_from(&path).map_err(err)?;
                merged = Some(match merged {
                    Some(m) => m.merge(next).map_err(err)?,
                    None => next,
                });
            }
            let merged = merged.unwrap_or_default();
            Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
                .await
                .map_err(|source| ClientError::Kubeconfig {
                    path: paths.display().to_string(),
                    source,
                })?
        }
        None => match Config::incluster() {
            Ok(c) => c,
            Err(incluster) => Config::infer().await.map_err(|infer| ClientError::Infer {
                incluster: incluster.to_string(),
                infer: infer.to_string(),
            })?,
        },
    };
    Client::try_from(config).map_err(ClientError::Client)
}
