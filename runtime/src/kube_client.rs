//! Building the Kubernetes client: from `--kubeconfig`, else the pod's ServiceAccount,
//! else whatever `kube::Config::infer` finds (`$KUBECONFIG`, `~/.kube/config`).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Why no client could be built. All of these are configuration problems; each binary
/// chooses the exit status.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A kubeconfig file could not be read, parsed or merged.
    #[error("--kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file (or, when the merged whole is unusable, every path given).
        path: String,
        /// What went wrong.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// `--kubeconfig` was given but names no file (empty, or only `:`).
    #[error("--kubeconfig: no file named")]
    NoFile,
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
    Client(#[source] kube::Error),
}

/// Builds a client from `kubeconfig` (one path, or several separated by `:` as in
/// `KUBECONFIG`, merged in order). Without one: the in-cluster config (a pod's
/// ServiceAccount), else whatever `kube::Config::infer` finds (`~/.kube/config`).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(paths) => from_files(paths).await?,
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

/// The config of the kubeconfig files in `paths`, merged in order.
async fn from_files(paths: &Path) -> Result<Config, ClientError> {
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
    let merged = merged.ok_or(ClientError::NoFile)?;
    Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::Kubeconfig {
            path: paths.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    const CONTEXT: &str = "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
        contexts: [{name: c, context: {cluster: k, user: u}}]\n";
    const CLUSTER: &str = "apiVersion: v1\nkind: Config\n\
        clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n\
        users: [{name: u, user: {token: t}}]\n";

    #[tokio::test]
    async fn several_files_merge_in_order() {
        let (a, b) = (file(CONTEXT), file(CLUSTER));
        let joined = std::env::join_paths([a.path(), b.path()]).expect("joins");
        let client = connect(Some(Path::new(&joined))).await;
        assert!(client.is_ok(), "{:?}", client.err());
    }

    /// The error of a `connect` that must fail (`Client` has no `Debug` for `expect_err`).
    async fn refused(kubeconfig: &Path) -> ClientError {
        match connect(Some(kubeconfig)).await {
            Ok(_) => panic!("{} gave a client", kubeconfig.display()),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn errors_name_the_flag_and_the_file() {
        let missing = PathBuf::from("/nonexistent/kubeconfig");
        let err = refused(&missing).await;
        let line = err.to_string();
        assert!(
            line.starts_with("--kubeconfig /nonexistent/kubeconfig: "),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");

        let err = refused(Path::new(":")).await;
        assert_eq!(err.to_string(), "--kubeconfig: no file named");

        // A context whose cluster is nowhere: the merged whole is refused.
        let lone = file(CONTEXT);
        let err = refused(lone.path()).await;
        assert!(matches!(err, ClientError::Kubeconfig { .. }), "{err}");
    }
}
