//! `#[concoord::object]` and `#[concoord::proxy]`. Use them through the
//! `concoord` crate; the generated code refers to `::concoord` unless
//! `crate = "path"` says otherwise.

use concoord_codegen::dispatch::dispatch;
use concoord_codegen::model::{from_impl, from_trait, strip_helper_attrs};
use concoord_codegen::proxy::{ProxySpec, ProxyType, method_table, proxies};
use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemImpl, ItemTrait, LitBool, LitStr};

struct Options {
    krate: syn::Path,
    name: Option<String>,
    proxy: bool,
    detached_snapshot: bool,
    async_name: Option<syn::Ident>,
    blocking_name: Option<syn::Ident>,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut opts = Options {
        krate: syn::parse_quote!(::concoord),
        name: None,
        proxy: true,
        detached_snapshot: false,
        async_name: None,
        blocking_name: None,
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            opts.name = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if meta.path.is_ident("crate") {
            opts.krate = meta.value()?.parse::<LitStr>()?.parse()?;
        } else if meta.path.is_ident("proxy") {
            opts.proxy = meta.value()?.parse::<LitBool>()?.value;
        } else if meta.path.is_ident("detached_snapshot") {
            opts.detached_snapshot = meta.value()?.parse::<LitBool>()?.value;
        } else if meta.path.is_ident("async_name") {
            opts.async_name = Some(meta.value()?.parse::<LitStr>()?.parse()?);
        } else if meta.path.is_ident("blocking_name") {
            opts.blocking_name = Some(meta.value()?.parse::<LitStr>()?.parse()?);
        } else {
            return Err(meta.error(
                "expected `name = \"…\"`, `crate = \"…\"`, `proxy = bool`, `detached_snapshot = bool`, \
                 `async_name` or `blocking_name`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(opts)
}

/// Makes an inherent `impl` block a replicated object.
///
/// Every `pub` method taking `&mut self` is a write (ordered through Paxos and
/// run on every replica); every `pub` method taking `&self` is a linearizable
/// read. Arguments must be owned, serde-serialisable types; a method returning
/// `Result<T, E>` hands the client a typed error `E`. A parameter of type
/// `&mut CallContext` (not sent on the wire) tells a write who is calling. A
/// constructor marked `#[concoord(init)]` serves `concoord_init(…)`; without
/// one, `concoord_init()` resets to `Default`.
///
/// Generates `impl ReplicatedObject` and, unless `proxy = false`, the client
/// proxies `TypeProxy` (async) and `TypeBlockingProxy`.
///
/// Options: `name = "dotted.Name"` (the name `concoord status` shows),
/// `crate = "path"` (where ConCoord is; default `::concoord`), `proxy = bool`,
/// `detached_snapshot = bool` (snapshots serialized from a clone on another
/// thread, see `ReplicatedObject::detached_snapshot`; needs `Clone`).
#[proc_macro_attribute]
pub fn object(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| -> syn::Result<proc_macro2::TokenStream> {
        let opts = parse_options(attr)?;
        let mut imp: ItemImpl = syn::parse(item)?;
        let model = from_impl(&imp)?;
        strip_helper_attrs(&mut imp);
        let dispatch = dispatch(
            &model,
            &opts.krate,
            opts.name.as_deref(),
            opts.detached_snapshot,
        );
        let proxies = if opts.proxy {
            let mut spec = ProxySpec::both(&model, opts.krate.clone());
            if let Some(n) = opts.async_name {
                spec.async_name = Some(n);
            }
            if let Some(n) = opts.blocking_name {
                spec.blocking_name = Some(n);
            }
            proxies(&model, &spec)
        } else {
            quote!()
        };
        Ok(quote!(#imp #dispatch #proxies))
    })();
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Generates client proxies from a trait listing an object's method
/// signatures, for objects defined in a crate the client does not depend on.
/// The trait itself is not emitted. Generates `TraitProxy` and
/// `TraitBlockingProxy` (rename with `async_name`/`blocking_name`), each with
/// a `METHODS` table to check against the object.
#[proc_macro_attribute]
pub fn proxy(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| -> syn::Result<proc_macro2::TokenStream> {
        let opts = parse_options(attr)?;
        let tr: ItemTrait = syn::parse(item)?;
        let model = from_trait(&tr)?;
        let async_name = opts
            .async_name
            .unwrap_or_else(|| format_ident!("{}Proxy", model.ty));
        let blocking_name = opts
            .blocking_name
            .unwrap_or_else(|| format_ident!("{}BlockingProxy", model.ty));
        let spec = ProxySpec {
            krate: opts.krate.clone(),
            token: None,
            mode: ProxyType::ServerBatching,
            async_name: Some(async_name.clone()),
            blocking_name: Some(blocking_name.clone()),
            allow_unused: false,
        };
        let proxies = proxies(&model, &spec);
        let table_async = method_table(&model, &opts.krate, &async_name);
        let table_blocking = method_table(&model, &opts.krate, &blocking_name);
        Ok(quote!(#proxies #table_async #table_blocking))
    })();
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}
