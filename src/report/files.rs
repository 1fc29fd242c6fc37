//! A table over a known list of Parquet files: the files the committed `scans` rows name (or, for the
//! append-only tables, the files one listing found). DataFusion opens exactly these, so a session never
//! lists a table folder, never sees an uncommitted run, and never keeps a stale listing in a cache.

use std::sync::Arc;

use arrow::datatypes::{Field, SchemaRef};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::Session;
use datafusion::common::{project_schema, Result, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use object_store::ObjectMeta;

use crate::warehouse::read::PartitionFile;
use crate::warehouse::schema::{partition_type, table_schema, Table};
use crate::warehouse::Warehouse;

/// One table's files, with their partition values.
#[derive(Debug)]
pub struct FilesTable {
    table: Table,
    schema: SchemaRef,
    store_url: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
}

impl FilesTable {
    pub fn new(warehouse: &Warehouse, table: Table, files: &[PartitionFile]) -> Result<FilesTable> {
        let files = files
            .iter()
            .filter(|f| f.table == table)
            .map(|file| {
                let meta = ObjectMeta {
                    location: warehouse.path(&file.key),
                    last_modified: DateTime::<Utc>::UNIX_EPOCH,
                    size: file.size,
                    e_tag: None,
                    version: None,
                };
                PartitionedFile::new_from_meta(meta).with_partition_values(
                    file.values
                        .iter()
                        .map(|v| ScalarValue::Utf8(Some(v.clone())))
                        .collect(),
                )
            })
            .collect();
        Ok(FilesTable {
            table,
            schema: table_schema(table),
            store_url: ObjectStoreUrl::parse(warehouse.store_url())?,
            files,
        })
    }
}

#[async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters are applied above the scan too; DataFusion pushes them into the Parquet reader, which
    /// prunes row groups and pages by their statistics.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        // The session's Parquet options (DATAFUSION_EXECUTION_PARQUET_* included).
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let partition_fields: Vec<arrow::datatypes::FieldRef> = self
            .table
            .partition_columns()
            .iter()
            .map(|name| Arc::new(Field::new(*name, partition_type(), false)))
            .collect();
        let source = format.file_source(
            TableSchema::builder(self.table.file_schema())
                .with_table_partition_cols(partition_fields)
                .build(),
        );
        let groups = FileGroup::new(self.files.clone())
            .split_files(state.config().target_partitions().max(1));
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}
