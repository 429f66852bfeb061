-- The sentence vectors of each tenant's rule texts (examples, or titles of rules without
-- examples), by model: a restart, another process or a cache eviction re-encodes
-- nothing, and a change to the rules encodes only its new texts. `text_hash` is the
-- SHA-256 of the text; `vector` its little-endian f32 values. Rows of texts no longer in
-- any rule are deleted when the tenant's index is next built.
create table sentence_vectors (
    tenant_id  uuid not null references tenants (id) on delete cascade,
    model      text not null,
    text_hash  bytea not null,
    vector     bytea not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, model, text_hash)
);
select switchboard_isolate('sentence_vectors');
