//! `concoord object`: a proxy source file for clients that do not depend on
//! the object's crate. Types of the object's source used in method signatures
//! (error enums, records) are copied into the file, so it needs only the
//! `concoord` crate.

use crate::model::{Method, ObjectModel, Ret, from_impl};
use crate::proxy::{ProxySpec, ProxyType, proxies};
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use syn::visit::Visit;
use syn::{Item, ItemImpl, Type};
use thiserror::Error;

/// Why no proxy file could be generated; each message says where to look.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// The source is not valid Rust.
    #[error("{path}:{line}:{column}: cannot parse: {source}")]
    Parse {
        /// The source's path.
        path: String,
        /// Where (1-based line and column).
        line: usize,
        /// The column.
        column: usize,
        /// The parser's complaint.
        #[source]
        source: syn::Error,
    },
    /// The source has no `impl` block for the type.
    #[error("{path}: no `impl {type_name}` block found; name the type whose methods to expose")]
    NoImpl {
        /// The source's path.
        path: String,
        /// The type asked for.
        type_name: String,
    },
    /// The `impl` block breaks an object rule.
    #[error("{path}:{line}: {source}")]
    Model {
        /// The source's path.
        path: String,
        /// Where (1-based line).
        line: usize,
        /// The rule broken.
        #[source]
        source: syn::Error,
    },
    /// The generated code did not parse back (a bug of the generator).
    #[error("internal error formatting the proxy: {0}")]
    Format(#[source] syn::Error),
}

/// What `concoord object` was asked for.
pub struct Request<'a> {
    /// The object's source text.
    pub source: &'a str,
    /// The source's path, for the header.
    pub source_path: &'a str,
    /// The object type's name.
    pub type_name: &'a str,
    /// `-p`.
    pub proxy_type: ProxyType,
    /// `-t`.
    pub token: Option<String>,
}

/// The generated file and what went into it.
pub struct Generated {
    /// Formatted Rust source.
    pub code: String,
    /// The model (methods found), for verbose output.
    pub model: ObjectModel,
    /// Types copied from the source.
    pub copied_types: Vec<String>,
}

/// The impl block of `type_name` in a file: the one marked
/// `#[concoord::object]` if there is one, else the first inherent impl.
pub fn find_impl<'f>(file: &'f syn::File, type_name: &str) -> Option<&'f ItemImpl> {
    let impls: Vec<&ItemImpl> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Impl(imp) if imp.trait_.is_none() => Some(imp),
            _ => None,
        })
        .filter(|imp| matches!(&*imp.self_ty, Type::Path(p) if p.path.is_ident(type_name)))
        .collect();
    impls
        .iter()
        .find(|imp| {
            imp.attrs.iter().any(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "object")
            })
        })
        .or(impls.first())
        .copied()
}

#[derive(Default)]
struct TypeNames(BTreeSet<String>);

impl<'ast> Visit<'ast> for TypeNames {
    fn visit_path_segment(&mut self, s: &'ast syn::PathSegment) {
        self.0.insert(s.ident.to_string());
        syn::visit::visit_path_segment(self, s);
    }
}

fn signature_type_names(methods: &[Method], model: &ObjectModel) -> BTreeSet<String> {
    let mut names = TypeNames::default();
    for m in methods {
        for a in m.wire_args() {
            names.visit_type(&a.ty);
        }
        match &m.ret {
            Ret::Unit => {}
            Ret::Value(t) | Ret::Wait(t) => names.visit_type(t),
            Ret::Fallible { ok, err } => {
                names.visit_type(ok);
                names.visit_type(err);
            }
        }
    }
    if let Some(init) = &model.init {
        for a in &init.args {
            names.visit_type(&a.ty);
        }
    }
    names.0
}

/// Rewrites a copied type so its serde derives resolve through `concoord`.
fn copy_type(item: &Item) -> Option<(String, proc_macro2::TokenStream)> {
    let (name, attrs) = match item {
        Item::Struct(s) => (s.ident.to_string(), &s.attrs),
        Item::Enum(e) => (e.ident.to_string(), &e.attrs),
        _ => return None,
    };
    let mut item = item.clone();
    let attrs_mut = match &mut item {
        Item::Struct(s) => &mut s.attrs,
        Item::Enum(e) => &mut e.attrs,
        _ => return None,
    };
    let uses_serde = attrs
        .iter()
        .any(|a| a.path().is_ident("derive") && quote!(#a).to_string().contains("Serialize"));
    attrs_mut.retain(|a| {
        a.path().is_ident("derive") || a.path().is_ident("doc") || a.path().is_ident("serde")
    });
    for a in attrs_mut.iter_mut() {
        if a.path().is_ident("derive") {
            let text = quote!(#a).to_string();
            let rewritten = text
                .replace("serde :: Serialize", "Serialize")
                .replace("serde :: Deserialize", "Deserialize")
                .replace(
                    "Serialize",
                    ":: concoord :: __private :: serde :: Serialize",
                )
                .replace(
                    "Deserialize",
                    ":: concoord :: __private :: serde :: Deserialize",
                );
            if let Ok(parsed) =
                syn::parse_str::<syn::DeriveInput>(&format!("{rewritten} struct X;"))
                && let Some(new) = parsed.attrs.into_iter().next()
            {
                *a = new;
            }
        }
    }
    if uses_serde {
        let crate_attr: syn::Attribute =
            syn::parse_quote!(#[serde(crate = "::concoord::__private::serde")]);
        attrs_mut.push(crate_attr);
    }
    Some((name, quote!(#item)))
}

/// Generates the standalone proxy file.
pub fn generate(req: &Request<'_>) -> Result<Generated, GenerateError> {
    let path = || req.source_path.to_string();
    let file = syn::parse_file(req.source).map_err(|source| {
        let at = source.span().start();
        GenerateError::Parse {
            path: path(),
            line: at.line,
            column: at.column + 1,
            source,
        }
    })?;
    let imp = find_impl(&file, req.type_name).ok_or_else(|| GenerateError::NoImpl {
        path: path(),
        type_name: req.type_name.to_string(),
    })?;
    let model = from_impl(imp).map_err(|source| GenerateError::Model {
        path: path(),
        line: source.span().start().line,
        source,
    })?;
    let used = signature_type_names(&model.methods, &model);
    let mut copied = Vec::new();
    let mut copied_names = Vec::new();
    for item in &file.items {
        if let Some((name, tokens)) = copy_type(item)
            && used.contains(&name)
            && name != req.type_name
        {
            copied_names.push(name);
            copied.push(tokens);
        }
    }
    // The macro's names, so a file generated here reads like the macro's
    // proxies and never clashes with the object's own type.
    let spec = ProxySpec {
        krate: syn::parse_quote!(::concoord),
        token: req.token.clone(),
        mode: req.proxy_type,
        async_name: (req.proxy_type != ProxyType::Blocking)
            .then(|| format_ident!("{}Proxy", req.type_name)),
        blocking_name: (req.proxy_type == ProxyType::Blocking)
            .then(|| format_ident!("{}BlockingProxy", req.type_name)),
        allow_unused: true,
    };
    let proxy = proxies(&model, &spec);
    let tokens = quote! {
        #(#copied)*
        #proxy
    };
    let body = syn::parse2::<syn::File>(tokens)
        .map(|f| prettyplease::unparse(&f))
        .map_err(GenerateError::Format)?;
    let kind = match req.proxy_type {
        ProxyType::Basic => "0 (basic: one call at a time)",
        ProxyType::Blocking => "1 (blocking)",
        ProxyType::ClientBatching => "2 (client-side batching)",
        ProxyType::ServerBatching => "3 (server-side batching: pipelined)",
    };
    let header = format!(
        "// Proxy for `{ty}`, generated by `concoord object` from {path}.\n\
         // Proxy type {kind}. Do not edit: generate it again instead.\n\
         // It needs only the `concoord` crate: add `concoord` to your dependencies and\n\
         // `include!` this file or make it a module.\n\n",
        ty = req.type_name,
        path = req.source_path,
    );
    Ok(Generated {
        code: format!("{header}{body}"),
        model,
        copied_types: copied_names,
    })
}

/// The file name `concoord object` writes: `tencounter_proxy.rs` for `TenCounter`.
pub fn file_name(type_name: &str) -> String {
    format!("{}_proxy.rs", type_name.to_lowercase())
}
