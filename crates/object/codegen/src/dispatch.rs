//! The replica side: `impl ReplicatedObject` turning a method name and
//! msgpack arguments into a call, and its result into a msgpack reply.

use crate::model::{Arg, Kind, Method, ObjectModel, Param, Ret};
use proc_macro2::TokenStream;
use quote::quote;

fn decode_args(obj: &TokenStream, args: &[&Arg]) -> TokenStream {
    if args.is_empty() {
        return quote!(#obj::args::none(__concoord_method, __concoord_args)?;);
    }
    let names = args.iter().map(|a| &a.name);
    let tys = args.iter().map(|a| &a.ty);
    quote! {
        let (#(#names,)*): (#(#tys,)*) = #obj::args::decode(__concoord_method, __concoord_args)?;
    }
}

fn arm(obj: &TokenStream, m: &Method) -> TokenStream {
    let name = &m.name;
    let name_str = name.to_string();
    let decode = decode_args(obj, &m.wire_args());
    let call_args = m.params.iter().map(|p| match p {
        Param::Wire(a) => {
            let n = &a.name;
            quote!(#n)
        }
        Param::Context => quote!(__concoord_ctx),
    });
    let call = quote!(self.#name(#(#call_args),*));
    let reply = match &m.ret {
        Ret::Unit => quote!({ #call; #obj::reply(&()) }),
        Ret::Value(_) => quote!({ let __concoord_out = #call; #obj::reply(&__concoord_out) }),
        Ret::Wait(_) => quote! {
            match #call {
                #obj::Wait::Ready(__concoord_out) => #obj::reply(&__concoord_out),
                #obj::Wait::Blocked => {
                    __concoord_ctx.block();
                    ::core::result::Result::Ok(::std::vec::Vec::new())
                }
            }
        },
        Ret::Fallible { .. } => quote! {
            match #call {
                ::core::result::Result::Ok(__concoord_out) => #obj::reply(&__concoord_out),
                ::core::result::Result::Err(__concoord_err) => {
                    ::core::result::Result::Err(#obj::ObjectError::application(&__concoord_err))
                }
            }
        },
    };
    quote!(#name_str => { #decode #reply })
}

/// `impl ReplicatedObject for Type`, with the object's name given or derived
/// from the module path.
pub fn dispatch(
    model: &ObjectModel,
    krate: &syn::Path,
    name: Option<&str>,
    detached_snapshot: bool,
) -> TokenStream {
    let obj = quote!(#krate::__private::object);
    let ty = &model.ty;
    let type_name = match name {
        Some(n) => quote!(#n),
        None => quote!(concat!(module_path!(), "::", stringify!(#ty))),
    };
    let entries = model.methods.iter().map(|m| {
        let n = m.name.to_string();
        let k = match m.kind {
            Kind::Read => quote!(Read),
            Kind::Write => quote!(Write),
        };
        quote!((#n, #obj::MethodKind::#k))
    });
    let writes = model
        .methods
        .iter()
        .filter(|m| m.kind == Kind::Write)
        .map(|m| arm(&obj, m));
    let reads = model
        .methods
        .iter()
        .filter(|m| m.kind == Kind::Read)
        .map(|m| arm(&obj, m));
    let init = match &model.init {
        Some(init) => {
            let decode = decode_args(&obj, &init.args.iter().collect::<Vec<_>>());
            let name = &init.name;
            let names = init.args.iter().map(|a| &a.name);
            quote! {
                let __concoord_method = #obj::CONCOORD_INIT;
                #decode
                ::core::result::Result::Ok(#ty::#name(#(#names),*))
            }
        }
        None => quote! {
            #obj::args::none(#obj::CONCOORD_INIT, __concoord_args)?;
            ::core::result::Result::Ok(<#ty as ::core::default::Default>::default())
        },
    };
    let on_cancel = model.on_cancel.as_ref().map(|f| {
        quote! {
            fn cancel_wait(&mut self, ctx: &mut #obj::CallContext, waiter: #obj::Waiter) -> bool {
                self.#f(ctx, waiter)
            }
        }
    });
    let on_expire = model.on_expire.as_ref().map(|f| {
        quote! {
            fn session_expired(&mut self, ctx: &mut #obj::CallContext, client_id: u64) {
                self.#f(ctx, client_id)
            }
        }
    });
    let on_reinit = model.on_reinit.as_ref().map(|f| {
        quote! {
            fn carry_over(&self, fresh: &mut Self) -> ::core::result::Result<(), #obj::ObjectError> {
                self.#f(fresh);
                ::core::result::Result::Ok(())
            }
        }
    });
    let detached = detached_snapshot.then(|| {
        quote! {
            fn detached_snapshot(&self) -> ::core::option::Option<#obj::DetachedSnapshot> {
                #obj::snapshot_of_clone(self)
            }
        }
    });
    quote! {
        impl #obj::ReplicatedObject for #ty {
            #detached
            #on_cancel
            #on_expire
            #on_reinit

            fn type_name() -> &'static str {
                #type_name
            }

            fn methods() -> &'static [(&'static str, #obj::MethodKind)] {
                &[#(#entries),*]
            }

            #[allow(unused_variables, clippy::unit_arg, clippy::let_unit_value)]
            fn apply(
                &mut self,
                __concoord_ctx: &mut #obj::CallContext,
                __concoord_method: &str,
                __concoord_args: &[u8],
            ) -> ::core::result::Result<::std::vec::Vec<u8>, #obj::ObjectError> {
                match __concoord_method {
                    #(#writes)*
                    _ => ::core::result::Result::Err(#obj::ObjectError::unknown(__concoord_method)),
                }
            }

            #[allow(unused_variables, clippy::unit_arg, clippy::let_unit_value)]
            fn query(
                &self,
                __concoord_method: &str,
                __concoord_args: &[u8],
            ) -> ::core::result::Result<::std::vec::Vec<u8>, #obj::ObjectError> {
                match __concoord_method {
                    #(#reads)*
                    _ => ::core::result::Result::Err(#obj::ObjectError::unknown(__concoord_method)),
                }
            }

            #[allow(unused_variables)]
            fn init(
                __concoord_args: &[u8],
            ) -> ::core::result::Result<Self, #obj::ObjectError> {
                #init
            }
        }
    }
}
