//! Reading NodeTopologies and Nodes (and, for `explain`, Pods) from the cluster.
//!
//! Both are listed as `DynamicObject`s and each object is read on its own, as from a
//! file, so one object the types do not accept is skipped with a warning, not fatal.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::{Client, Resource};
use linkmeter_runtime::kube_client::{self, ClientError};

use crate::api::NodeTopology;
use crate::cli::exit::Failure;
use crate::cli::files::{Item, Items};
use crate::cli::inputs::Inputs;

/// Objects asked for per list request: a 5,000-node cluster is read in pages.
const PAGE: u32 = 500;
/// Longest the whole read may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// Reads both lists (runtime failures: exit 1).
pub fn read(kubeconfig: Option<&Path>) -> Result<Inputs, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        match tokio::time::timeout(DEADLINE, read_async(kubeconfig)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::runtime(format!(
                "reading the cluster took more than {} s",
                DEADLINE.as_secs()
            ))),
        }
    })
}

async fn read_async(kubeconfig: Option<&Path>) -> Result<Inputs, Failure> {
    let client = connect(kubeconfig).await?;
    read_inputs(&client).await
}

async fn read_inputs(client: &Client) -> Result<Inputs, Failure> {
    let topologies = list::<NodeTopology>(client).await?;
    let nodes = list::<Node>(client).await?;
    Ok(Inputs::from_items(topologies, Some(nodes)))
}

/// What `explain` reads: the inputs, the pod `namespace/name`, and every pod bound to a
/// node and not finished.
pub fn read_for_pod(
    kubeconfig: Option<&Path>,
    namespace: &str,
    name: &str,
) -> Result<(Inputs, Pod, Items<Pod>), Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let work = async {
            let client = connect(kubeconfig).await?;
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let pod = api.get(name).await.map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 404 => {
                    Failure::data(format!("pod {namespace}/{name} not found"))
                }
                _ => Failure::runtime(format!("cannot read pod {namespace}/{name}: {e}")),
            })?;
            let inputs = read_inputs(&client).await?;
            let pods = list::<Pod>(&client).await?;
            Ok((inputs, pod, pods))
        };
        match tokio::time::timeout(DEADLINE, work).await {
            Ok(r) => r,
            Err(_) => Err(Failure::runtime(format!(
                "reading the cluster took more than {} s",
                DEADLINE.as_secs()
            ))),
        }
    })
}

/// A client from `--kubeconfig`, else the in-cluster config, else `kube::Config::infer`
/// (`$KUBECONFIG`, `~/.kube/config`). Unlike `run`, a failure here is a runtime one
/// (exit 1), and without any configuration the files are the other way in.
async fn connect(kubeconfig: Option<&Path>) -> Result<Client, Failure> {
    kube_client::connect(kubeconfig).await.map_err(|e| {
        Failure::runtime(match e {
            ClientError::Infer { incluster, infer } => format!(
                "no Kubernetes configuration: not in a pod ({incluster}) and no \
                 kubeconfig ({infer}); pass --kubeconfig or --nodetopologies FILE"
            ),
            other => other.to_string(),
        })
    })
}

/// Every object of `T`'s kind, page by page, each read on its own.
async fn list<T: Item + Resource<DynamicType = ()>>(client: &Client) -> Result<Items<T>, Failure> {
    let resource = ApiResource::erase::<T>(&());
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut items = Items::<T>::new(&format!("cluster {}", T::RESOURCE));
    let mut params = ListParams::default().limit(PAGE);
    let mut index = 0;
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| Failure::runtime(format!("cannot list {}: {e}", T::RESOURCE)))?;
        for object in page.items {
            match serde_json::to_value(&object) {
                Ok(value) => items.add(index, value),
                Err(e) => {
                    items.skipped += 1;
                    items.warnings.push(format!("item {index}: {e}, skipped"));
                }
            }
            index += 1;
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    Ok(items)
}
