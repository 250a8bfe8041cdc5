//! The documents a container record stores as `google.protobuf.Any` values
//! whose payload is JSON: the OCI runtime spec (`spec`, type
//! `types.containerd.io/opencontainers/runtime-spec/1/Spec`) and the CRI's
//! container metadata extension (`io.cri-containerd.container.metadata`).
//! containerd's `typeurl` marshals types that are not protobuf messages as
//! JSON, so the payload is read with `serde_json` (its recursion limit bounds
//! nesting); a payload that is not JSON is left undecoded.

use serde_json::Value;

/// The JSON document of an `Any` payload, if it is one.
pub fn json_payload(value: &[u8]) -> Option<Value> {
    serde_json::from_slice(value).ok()
}

/// The annotation the CRI writes with the pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
/// The annotation the CRI writes with the pod's name.
pub const POD_NAME: &str = "io.kubernetes.cri.sandbox-name";
/// The annotation the CRI writes with the container's name in its pod.
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// The Kubernetes pod a runtime spec's CRI annotations name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The pod's namespace.
    pub namespace: Option<String>,
    /// The pod's name.
    pub name: Option<String>,
    /// The container's name in the pod (absent for the sandbox's own).
    pub container: Option<String>,
}

/// The pod of a decoded runtime spec, when the CRI annotated it.
pub fn pod_of(spec: &Value) -> Option<Pod> {
    let ann = spec.get("annotations")?.as_object()?;
    let get = |k: &str| ann.get(k).and_then(Value::as_str).map(str::to_string);
    let pod = Pod {
        namespace: get(POD_NAMESPACE),
        name: get(POD_NAME),
        container: get(CONTAINER_NAME),
    };
    (pod.namespace.is_some() || pod.name.is_some()).then_some(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cri_spec_names_its_pod_and_a_plain_one_none() {
        let spec = json_payload(
            br#"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.sandbox-namespace":"kube-system","io.kubernetes.cri.sandbox-name":"coredns-1","io.kubernetes.cri.container-name":"coredns"}}"#,
        )
        .unwrap();
        assert_eq!(
            pod_of(&spec),
            Some(Pod {
                namespace: Some("kube-system".into()),
                name: Some("coredns-1".into()),
                container: Some("coredns".into()),
            })
        );
        let plain = json_payload(br#"{"ociVersion":"1.1.0","process":{"args":["sh"]}}"#).unwrap();
        assert_eq!(pod_of(&plain), None);
        assert_eq!(json_payload(b"\x0a\x03abc"), None);
    }
}
