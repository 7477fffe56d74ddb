//! The cluster's PKI, generated fresh for every cluster start: a CA, the apiserver's serving cert, an admin
//! client cert (system:masters, used by every component and by tests) and the service-account key pair; for
//! the API aggregation layer a front-proxy CA with the apiserver's proxy client cert, and serving certs for
//! metrics-server and for kwok's kubelet-style endpoint; the real node's kubelet certs (a client cert as
//! `system:node:<name>` for the Node authorizer, and a serving cert) and the apiserver's client cert for
//! kubelets (`kubectl logs`, `exec`, `port-forward`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::util::{self, base64};

/// The first address of `--service-cluster-ip-range`: the `kubernetes` Service's ClusterIP.
pub const SERVICE_IP: &str = "10.96.0.1";

pub struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    /// Verifies the apiserver's proxy client cert on aggregated API servers (`--requestheader-client-ca-file`).
    pub front_proxy_ca_cert: PathBuf,
    pub front_proxy_client_cert: PathBuf,
    pub front_proxy_client_key: PathBuf,
    pub metrics_server_cert: PathBuf,
    pub metrics_server_key: PathBuf,
    /// kwok serves the nodes' kubelet-style endpoints (`/metrics/resource`) on 127.0.0.1 with this cert.
    pub kwok_cert: PathBuf,
    pub kwok_key: PathBuf,
    ca_pem: String,
    admin_cert_pem: String,
    admin_key_pem: String,
    kubelet_cert_pem: String,
    kubelet_key_pem: String,
    pub kubelet_serving_cert: PathBuf,
    pub kubelet_serving_key: PathBuf,
    /// The apiserver's client cert towards kubelets (`--kubelet-client-certificate`).
    pub apiserver_kubelet_client_cert: PathBuf,
    pub apiserver_kubelet_client_key: PathBuf,
}

/// The real node's name (`cluster up --real-node`); its certs are made with the rest.
pub const NODE_NAME: &str = "real-1";

/// `node_ip`: the real node's address, for its serving cert.
pub fn generate(dir: &Path, node_ip: Option<&str>) -> Result<Pki> {
    std::fs::create_dir_all(dir)?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn("ecs-operator-local-ca", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Issuer::from_params(&ca_params, &ca_key);

    let (serving_cert, serving_key) = serving(
        "kube-apiserver",
        &[
            "127.0.0.1",
            SERVICE_IP,
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        &ca,
    )?;
    let (admin_cert, admin_key) = client("kubernetes-admin", Some("system:masters"), &ca)?;

    // A CA of its own: aggregated API servers trust any cert it signs to assert the user in request headers.
    let front_proxy_ca_key = KeyPair::generate()?;
    let mut front_proxy_ca_params = CertificateParams::default();
    front_proxy_ca_params.distinguished_name = dn("ecs-operator-front-proxy-ca", None);
    front_proxy_ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    front_proxy_ca_params.key_usages = ca_params.key_usages.clone();
    let front_proxy_ca_cert = front_proxy_ca_params.self_signed(&front_proxy_ca_key)?;
    let front_proxy_ca = Issuer::from_params(&front_proxy_ca_params, &front_proxy_ca_key);
    let (front_proxy_client_cert, front_proxy_client_key) =
        client(FRONT_PROXY_CLIENT, None, &front_proxy_ca)?;
    // The aggregator checks the serving cert against the name of the APIService's Service.
    let (metrics_server_cert, metrics_server_key) = serving(
        "metrics-server",
        &[
            "metrics-server.kube-system.svc",
            "metrics-server.kube-system",
            "127.0.0.1",
        ],
        &ca,
    )?;
    let (kwok_cert, kwok_key) = serving("kwok", &["127.0.0.1", "localhost"], &ca)?;

    let (kubelet_cert, kubelet_key) = client(
        &format!("system:node:{NODE_NAME}"),
        Some("system:nodes"),
        &ca,
    )?;
    let mut kubelet_names = vec!["127.0.0.1", NODE_NAME];
    kubelet_names.extend(node_ip);
    let (kubelet_serving_cert, kubelet_serving_key) = serving(NODE_NAME, &kubelet_names, &ca)?;
    // The kubelet authorizes this user by a SubjectAccessReview: system:masters may do anything,
    // as kubeadm's apiserver-kubelet-client once could.
    let (apiserver_kubelet_cert, apiserver_kubelet_key) =
        client("kube-apiserver-kubelet-client", Some("system:masters"), &ca)?;

    // ECDSA P-256 (rcgen's default): accepted by the apiserver (ES256) and the token controller.
    let sa = KeyPair::generate()?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
        front_proxy_ca_cert: dir.join("front-proxy-ca.crt"),
        front_proxy_client_cert: dir.join("front-proxy-client.crt"),
        front_proxy_client_key: dir.join("front-proxy-client.key"),
        metrics_server_cert: dir.join("metrics-server.crt"),
        metrics_server_key: dir.join("metrics-server.key"),
        kwok_cert: dir.join("kwok.crt"),
        kwok_key: dir.join("kwok.key"),
        ca_pem: ca_cert.pem(),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
        kubelet_cert_pem: kubelet_cert.pem(),
        kubelet_key_pem: kubelet_key.serialize_pem(),
        kubelet_serving_cert: dir.join("kubelet.crt"),
        kubelet_serving_key: dir.join("kubelet.key"),
        apiserver_kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
        apiserver_kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
    };
    util::write_file(&pki.ca_cert, &pki.ca_pem)?;
    util::write_private(&dir.join("ca.key"), ca_key.serialize_pem())?;
    util::write_file(&pki.serving_cert, serving_cert.pem())?;
    util::write_private(&pki.serving_key, serving_key.serialize_pem())?;
    util::write_file(&dir.join("admin.crt"), &pki.admin_cert_pem)?;
    util::write_private(&dir.join("admin.key"), &pki.admin_key_pem)?;
    util::write_file(&pki.kubelet_serving_cert, kubelet_serving_cert.pem())?;
    util::write_private(
        &pki.kubelet_serving_key,
        kubelet_serving_key.serialize_pem(),
    )?;
    util::write_file(
        &pki.apiserver_kubelet_client_cert,
        apiserver_kubelet_cert.pem(),
    )?;
    util::write_private(
        &pki.apiserver_kubelet_client_key,
        apiserver_kubelet_key.serialize_pem(),
    )?;
    util::write_private(&pki.sa_key, sa.serialize_pem())?;
    util::write_file(&pki.sa_pub, sa.public_key_pem())?;
    util::write_file(&pki.front_proxy_ca_cert, front_proxy_ca_cert.pem())?;
    util::write_file(&pki.front_proxy_client_cert, front_proxy_client_cert.pem())?;
    util::write_private(
        &pki.front_proxy_client_key,
        front_proxy_client_key.serialize_pem(),
    )?;
    util::write_file(&pki.metrics_server_cert, metrics_server_cert.pem())?;
    util::write_private(&pki.metrics_server_key, metrics_server_key.serialize_pem())?;
    util::write_file(&pki.kwok_cert, kwok_cert.pem())?;
    util::write_private(&pki.kwok_key, kwok_key.serialize_pem())?;
    Ok(pki)
}

/// The common name of the apiserver's proxy client cert (`--requestheader-allowed-names`).
pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// A server cert for `names` (IP addresses or DNS names), signed by `ca`.
fn serving(cn: &str, names: &[&str], ca: &Issuer<'_, &KeyPair>) -> Result<(Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params.distinguished_name = dn(cn, None);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert, key))
}

/// A client cert for user `cn` in group `org`, signed by `ca`.
fn client(
    cn: &str,
    org: Option<&str>,
    ca: &Issuer<'_, &KeyPair>,
) -> Result<(Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn, org);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert, key))
}

fn dn(cn: &str, org: Option<&str>) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

impl Pki {
    /// The cluster CA, base64 (an APIService's caBundle).
    pub fn ca_bundle(&self) -> String {
        base64(self.ca_pem.as_bytes())
    }

    /// An admin kubeconfig with everything inline, so it can be copied or read by any client library.
    pub fn kubeconfig(&self, server: &str) -> String {
        kubeconfig(
            server,
            &self.ca_pem,
            &self.admin_cert_pem,
            &self.admin_key_pem,
        )
    }

    /// The real node's kubelet kubeconfig, as `system:node:<NODE_NAME>`.
    pub fn kubelet_kubeconfig(&self, server: &str) -> String {
        kubeconfig(
            server,
            &self.ca_pem,
            &self.kubelet_cert_pem,
            &self.kubelet_key_pem,
        )
    }
}

fn kubeconfig(server: &str, ca: &str, cert: &str, key: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: ecs-operator-local
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: ecs-operator-local
  context:
    cluster: ecs-operator-local
    user: admin
    namespace: default
current-context: ecs-operator-local
",
        ca = base64(ca.as_bytes()),
        cert = base64(cert.as_bytes()),
        key = base64(key.as_bytes()),
    )
}
