//! `committed_scan(scan_id)`: whether a scan has its commit marker, as the session saw the warehouse when
//! it opened. Tables are filtered with it on their `scan_id` partition column, so the files of a scan that
//! has not committed are never listed. (It replaces `scan_id IN (<every committed id>)`: DataFusion builds
//! a partition filter once per file, and a literal list that grows with every run made that cost grow with
//! files times scans.)

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
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
        let committed = |id: Option<&str>| id.map(|id| self.committed.contains(id));
        match args.args.as_slice() {
            [ColumnarValue::Scalar(value)] => {
                let id = match value {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v.as_deref()
                    }
                    other => return exec_err!("committed_scan takes a string, not {other:?}"),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(committed(id))))
            }
            [ColumnarValue::Array(array)] => {
                let result: BooleanArray = match array.data_type() {
                    DataType::Utf8View => array.as_string_view().iter().map(committed).collect(),
                    DataType::Utf8 => array.as_string::<i32>().iter().map(committed).collect(),
                    DataType::LargeUtf8 => array.as_string::<i64>().iter().map(committed).collect(),
                    other => return exec_err!("committed_scan takes a string, not {other}"),
                };
                Ok(ColumnarValue::Array(Arc::new(result)))
            }
            _ => exec_err!("committed_scan takes one argument"),
        }
    }
}
