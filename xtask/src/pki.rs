//! The cluster's PKI, generated fresh for every cluster start: a CA, the apiserver's serving cert, an admin
//! client cert (system:masters, used by every component and by tests), the service-account key pair, and
//! the real node's kubelet certs (a client cert as `system:node:<name>` for the Node authorizer, and a
//! serving cert).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
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
    ca_pem: String,
    admin_cert_pem: String,
    admin_key_pem: String,
    kubelet_cert_pem: String,
    kubelet_key_pem: String,
    pub kubelet_serving_cert: PathBuf,
    pub kubelet_serving_key: PathBuf,
}

/// The real node's name (`cluster up --real-node`); its certs are made with the rest.
pub const NODE_NAME: &str = "real-1";

pub fn generate(dir: &Path) -> Result<Pki> {
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

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        SERVICE_IP.to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])?;
    serving.distinguished_name = dn("kube-apiserver", None);
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.use_authority_key_identifier_extension = true;
    let serving_cert = serving.signed_by(&serving_key, &ca)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = CertificateParams::default();
    admin.distinguished_name = dn("kubernetes-admin", Some("system:masters"));
    admin.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    admin.use_authority_key_identifier_extension = true;
    let admin_cert = admin.signed_by(&admin_key, &ca)?;

    let kubelet_key = KeyPair::generate()?;
    let mut kubelet = CertificateParams::default();
    kubelet.distinguished_name = dn(&format!("system:node:{NODE_NAME}"), Some("system:nodes"));
    kubelet.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    kubelet.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    kubelet.use_authority_key_identifier_extension = true;
    let kubelet_cert = kubelet.signed_by(&kubelet_key, &ca)?;

    let kubelet_serving_key = KeyPair::generate()?;
    let mut kubelet_serving =
        CertificateParams::new(vec!["127.0.0.1".to_string(), NODE_NAME.to_string()])?;
    kubelet_serving.distinguished_name = dn(NODE_NAME, None);
    kubelet_serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    kubelet_serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    kubelet_serving.use_authority_key_identifier_extension = true;
    let kubelet_serving_cert = kubelet_serving.signed_by(&kubelet_serving_key, &ca)?;

    // ECDSA P-256 (rcgen's default): accepted by the apiserver (ES256) and the token controller.
    let sa = KeyPair::generate()?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
        ca_pem: ca_cert.pem(),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
        kubelet_cert_pem: kubelet_cert.pem(),
        kubelet_key_pem: kubelet_key.serialize_pem(),
        kubelet_serving_cert: dir.join("kubelet.crt"),
        kubelet_serving_key: dir.join("kubelet.key"),
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
    util::write_private(&pki.sa_key, sa.serialize_pem())?;
    util::write_file(&pki.sa_pub, sa.public_key_pem())?;
    Ok(pki)
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
