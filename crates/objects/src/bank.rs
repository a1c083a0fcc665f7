//! `concoord.object.bank.Bank`: accounts with balances. Unlike the seed's,
//! debits never overdraw and every failure is a typed error.

use concoord_macros::object;
pub use concoord_object::ready_made::BankError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Accounts and balances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    accounts: BTreeMap<String, i64>,
}

impl Bank {
    fn account(&mut self, account: &str) -> Result<&mut i64, BankError> {
        self.accounts
            .get_mut(account)
            .ok_or_else(|| BankError::NoSuchAccount(account.to_string()))
    }
}

fn positive(amount: i64) -> Result<i64, BankError> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(BankError::InvalidAmount(amount))
    }
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.bank.Bank"
)]
impl Bank {
    /// Opens an account with balance 0.
    pub fn open(&mut self, account: String) -> Result<(), BankError> {
        if self.accounts.contains_key(&account) {
            return Err(BankError::AccountExists(account));
        }
        self.accounts.insert(account, 0);
        Ok(())
    }

    /// Closes an account; returns the balance paid out.
    pub fn close(&mut self, account: String) -> Result<i64, BankError> {
        self.accounts
            .remove(&account)
            .ok_or(BankError::NoSuchAccount(account))
    }

    /// Adds `amount`; returns the new balance.
    pub fn deposit(&mut self, account: String, amount: i64) -> Result<i64, BankError> {
        let amount = positive(amount)?;
        let balance = self.account(&account)?;
        *balance = balance.saturating_add(amount);
        Ok(*balance)
    }

    /// Takes `amount` out, never below zero; returns the new balance.
    pub fn debit(&mut self, account: String, amount: i64) -> Result<i64, BankError> {
        let amount = positive(amount)?;
        let balance = self.account(&account)?;
        if *balance < amount {
            return Err(BankError::InsufficientFunds {
                account,
                balance: *balance,
                requested: amount,
            });
        }
        *balance -= amount;
        Ok(*balance)
    }

    /// The balance of an account.
    pub fn balance(&self, account: String) -> Result<i64, BankError> {
        self.accounts
            .get(&account)
            .copied()
            .ok_or(BankError::NoSuchAccount(account))
    }
}
