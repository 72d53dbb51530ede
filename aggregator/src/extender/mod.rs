//! The kube-scheduler extender's two verbs over the placement code: a request body in,
//! the answer out. Pure apart from JSON; the HTTP server is
//! the controller's `extender_http`.
//!
//! - `filter`: the nodes that fit, and a reason for each that does not
//!   ([`crate::placement::evaluate`]). A request that cannot be read (bad JSON, no pod,
//!   no nodes) is answered with `Error` set, which makes the scheduler fail that attempt
//!   and retry the pod later, rather than place it on a guess.
//! - `prioritize`: the score (0-10) of every node it is given.
//!
//! Nodes not in the view fail for pods with linkmeter annotations (the reason says so)
//! and pass for the others, so a Node that joined a moment ago is no error.

pub mod wire;

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::placement::{self, Detail, PlacedPod, PodUnderPlacement, Verdict, World};

pub use wire::{ExtenderArgs, ExtenderFilterResult, HostPriority, RawNodeList};

/// The candidates of one request.
struct Candidates {
    names: Vec<String>,
    /// The Node objects, when the request carried them whole.
    raw: Option<Vec<Box<RawValue>>>,
}

/// A request that cannot be served: why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest JSON error text echoed back.
const MAX_ERROR_CHARS: usize = 200;

fn parse(body: &[u8]) -> Result<(PodUnderPlacement, Candidates), BadRequest> {
    let args: ExtenderArgs = serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        if text.len() > MAX_ERROR_CHARS {
            let mut end = MAX_ERROR_CHARS;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        BadRequest(format!("the request is not ExtenderArgs JSON: {text}"))
    })?;
    let pod = args
        .pod
        .ok_or_else(|| BadRequest("the request has no Pod".to_owned()))?;
    let candidates = match (args.node_names, args.nodes) {
        (Some(names), _) => Candidates { names, raw: None },
        (None, Some(list)) => {
            let names = list
                .items
                .iter()
                .map(|raw| wire::node_name(raw))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| BadRequest(format!("a Node in the request cannot be read: {e}")))?;
            Candidates {
                names,
                raw: Some(list.items),
            }
        }
        (None, None) => {
            return Err(BadRequest(
                "the request has neither NodeNames nor Nodes".to_owned(),
            ));
        }
    };
    Ok((PodUnderPlacement::from_pod(&pod), candidates))
}

/// The verdicts; `None` world (no view computed yet) serves only pods without
/// annotations.
fn verdicts(
    world: Option<&World>,
    pods: &[Arc<PlacedPod>],
    pod: &PodUnderPlacement,
    names: &[String],
) -> Result<Vec<Verdict>, BadRequest> {
    let unannotated = matches!(&pod.request, Ok(r) if r.is_empty());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match world {
        Some(w) => Ok(placement::evaluate(w, pods, pod, &refs, Detail::Reasons)),
        None if unannotated => Ok(names
            .iter()
            .map(|n| Verdict {
                node: n.clone(),
                fits: true,
                reasons: Vec::new(),
                notes: Vec::new(),
                score: 0,
            })
            .collect()),
        None => Err(BadRequest(
            "linkmeter has no cluster view yet (waiting for the first computation)".to_owned(),
        )),
    }
}

/// Answers `filter`.
pub fn filter(world: Option<&World>, pods: &[Arc<PlacedPod>], body: &[u8]) -> ExtenderFilterResult {
    let answer = parse(body).and_then(|(pod, candidates)| {
        let verdicts = verdicts(world, pods, &pod, &candidates.names)?;
        Ok((candidates, verdicts))
    });
    let (candidates, verdicts) = match answer {
        Ok(a) => a,
        Err(e) => {
            return ExtenderFilterResult {
                error: e.0,
                ..Default::default()
            };
        }
    };
    let mut result = ExtenderFilterResult::default();
    let mut fits = Vec::with_capacity(verdicts.len());
    for v in &verdicts {
        fits.push(v.fits);
        if !v.fits {
            result
                .failed_nodes
                .insert(v.node.clone(), v.reasons.join("; "));
        }
    }
    match candidates.raw {
        Some(raw) => {
            let items = raw
                .into_iter()
                .zip(&fits)
                .filter_map(|(r, &ok)| ok.then_some(r))
                .collect();
            result.nodes = Some(RawNodeList { items });
        }
        None => {
            result.node_names = Some(
                verdicts
                    .into_iter()
                    .filter(|v| v.fits)
                    .map(|v| v.node)
                    .collect(),
            );
        }
    }
    result
}

/// Answers `prioritize`: a score for every node given, 0 for a node that does not fit.
pub fn prioritize(
    world: Option<&World>,
    pods: &[Arc<PlacedPod>],
    body: &[u8],
) -> Result<Vec<HostPriority>, BadRequest> {
    let (pod, candidates) = parse(body)?;
    let verdicts = verdicts(world, pods, &pod, &candidates.names)?;
    Ok(verdicts
        .into_iter()
        .map(|v| HostPriority {
            host: v.node,
            score: i64::from(v.score),
        })
        .collect())
}

#[cfg(test)]
mod tests;
