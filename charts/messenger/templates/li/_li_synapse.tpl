{{/*
The lawful-intercept data path's partials (templates/li/replication.yaml,
templates/li/synapse_li_config.yaml; docs/li.md#data-path): the table list
(files/li/tables.yaml) as publications, and the SQL the LI database runs after its schema
import.
*/}}

{{/* The publications, as JSON: [{"name": "li_history", "publish": "insert", "tables": [...]},
{"name": "li_current", "publish": "insert, update", ...}, {"name": "li_schema", "publish": "",
...}], from each replicated table's `publish` (files/li/tables.yaml). A publication that
publishes nothing still has its tables copied when a subscription starts (PostgreSQL 15,
CREATE PUBLICATION's `publish` and CREATE SUBSCRIPTION's `copy_data`). */}}
{{- define "messenger.liPublications" -}}
{{- $tables := (.Files.Get "files/li/tables.yaml" | fromYaml).replicated -}}
{{- $out := list -}}
{{- range $pub := list (dict "name" "li_history" "publish" "insert") (dict "name" "li_current" "publish" "insert, update") (dict "name" "li_schema" "publish" "") -}}
{{- $names := list -}}
{{- range $table, $spec := $tables -}}
{{- if eq $spec.publish $pub.publish }}{{ $names = append $names $table }}{{ end -}}
{{- end -}}
{{- $out = append $out (dict "name" $pub.name "publish" $pub.publish "tables" $names) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The statements CloudNativePG runs in the LI database after the schema import
(bootstrap.initdb.import.postImportApplicationSQL), as JSON. Triggers fire in a session whose
session_replication_role is `origin` (the default: LI Synapse, psql) unless enabled with ENABLE
REPLICA TRIGGER, which fire only in the logical replication workers (they run as `replica`),
PostgreSQL 15 documentation, "CREATE TRIGGER" and "ALTER TABLE ... ENABLE REPLICA TRIGGER":
  li_guard     every write outside replication to a table replicated with changes fails
               (SQLSTATE 42501); li_guard_update: where a table lists `writable` columns,
               an UPDATE outside replication may change those only;
  li_replay    replication only: removes the LI row an arriving insert would collide with;
  li_sequence  replication only: advances the sequences Synapse checks at start.
Names are schema-qualified: the apply worker runs with an empty search_path. */}}
{{- define "messenger.liPostImportSQL" -}}
{{- $tables := (.Files.Get "files/li/tables.yaml" | fromYaml).replicated -}}
{{- $sql := list -}}
{{- $sql = append $sql `CREATE FUNCTION public.li_refuse_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'lawful intercept: table % is replicated from the main instance and read-only here', TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$fn$` -}}
{{- $sql = append $sql `CREATE FUNCTION public.li_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF (to_jsonb(NEW) - TG_ARGV) IS DISTINCT FROM (to_jsonb(OLD) - TG_ARGV) THEN
    RAISE EXCEPTION 'lawful intercept: table % is replicated from the main instance and read-only here', TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$fn$` -}}
{{- $sql = append $sql `CREATE FUNCTION public.li_replay() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  k text;
  cond text;
BEGIN
  FOREACH k IN ARRAY TG_ARGV LOOP
    SELECT string_agg(format('%I = ($1).%I', c, c), ' AND ') INTO cond
      FROM unnest(string_to_array(k, ',')) AS c;
    EXECUTE format('DELETE FROM %I.%I WHERE ', TG_TABLE_SCHEMA, TG_TABLE_NAME) || cond USING NEW;
  END LOOP;
  RETURN NEW;
END
$fn$` -}}
{{- $sql = append $sql `CREATE FUNCTION public.li_sequence() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v bigint;
  cur bigint;
BEGIN
  EXECUTE format('SELECT ($1).%I', TG_ARGV[1]) INTO v USING NEW;
  IF TG_ARGV[2] = 'negative' THEN
    v := -v;
  END IF;
  IF v IS NOT NULL AND v > 0 THEN
    EXECUTE 'SELECT last_value FROM ' || TG_ARGV[0]::regclass::text INTO cur;
    IF v > cur THEN
      PERFORM setval(TG_ARGV[0]::regclass, v);
    END IF;
  END IF;
  RETURN NULL;
END
$fn$` -}}
{{- range $table, $spec := $tables -}}
{{- $t := printf "public.%s" $table -}}
{{- if and (ne $spec.publish "") $spec.writable -}}
{{- $sql = append $sql (printf "CREATE TRIGGER li_guard BEFORE INSERT OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION public.li_refuse_write()" $t) -}}
{{- $cols := list -}}
{{- range $spec.writable }}{{ $cols = append $cols (printf "'%s'" .) }}{{ end -}}
{{- $sql = append $sql (printf "CREATE TRIGGER li_guard_update BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION public.li_refuse_update(%s)" $t (join ", " $cols)) -}}
{{- else if ne $spec.publish "" -}}
{{- $sql = append $sql (printf "CREATE TRIGGER li_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION public.li_refuse_write()" $t) -}}
{{- end -}}
{{- if $spec.keys -}}
{{- $args := list -}}
{{- range $spec.keys }}{{ $args = append $args (printf "'%s'" (. | replace " " "")) }}{{ end -}}
{{- $sql = append $sql (printf "CREATE TRIGGER li_replay BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.li_replay(%s)" $t (join ", " $args)) -}}
{{- $sql = append $sql (printf "ALTER TABLE %s ENABLE REPLICA TRIGGER li_replay" $t) -}}
{{- end -}}
{{- range $i, $seq := $spec.sequences -}}
{{- $trigger := printf "li_sequence_%d" $i -}}
{{- $sql = append $sql (printf "CREATE TRIGGER %s AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.li_sequence('public.%s', '%s', '%s')" $trigger $t $seq.name $seq.column (ternary "negative" "positive" (default false $seq.negative))) -}}
{{- $sql = append $sql (printf "ALTER TABLE %s ENABLE REPLICA TRIGGER %s" $t $trigger) -}}
{{- end -}}
{{- end -}}
{{- toJson $sql -}}
{{- end -}}
