//! `committed_scan(scan_id)`: whether a scan has its commit marker, as the session saw the warehouse when
//! it opened. Tables are filtered with it on their `scan_id` partition column, so the files of a scan that
//! has not committed are never listed. (It replaces `scan_id IN (<every committed id>)`: DataFusion builds
//! a partition filter once per file, and a literal list that grows with every run made that cost grow with
//! files times scans.)

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct CommittedScan {
    committed: Arc<BTreeSet<String>>,
    signature: Signature,
}

/// The function over the scans in `committed`. Immutable for the session, so DataFusion may evaluate it
/// on partition values while listing.
pub fn committed_scan_udf(committed: BTreeSet<String>) -> ScalarUDF {
    ScalarUDF::new_from_impl(CommittedScan {
        committed: Arc::new(committed),
        signature: Signature::string(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for CommittedScan {
    fn name(&self) -> &str {
        "committed_scan"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [id] = args.args.as_slice() else {
            return exec_err!("committed_scan takes one argument");
        };
        let ids = cast(&id.to_array(args.number_rows)?, &DataType::Utf8)?;
        let committed: BooleanArray = ids
            .as_string::<i32>()
            .iter()
            .map(|id| id.map(|id| self.committed.contains(id)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(committed)))
    }
}
