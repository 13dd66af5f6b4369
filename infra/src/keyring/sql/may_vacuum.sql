-- Whether the current role may vacuum member_keys: a superuser, or a member of the role that
-- owns the table or the database (PostgreSQL 15; 16+ also grants MAINTAIN). Otherwise VACUUM
-- only notices and skips the table.
SELECT r.rolsuper
       OR pg_has_role(c.relowner, 'USAGE')
       OR pg_has_role(d.datdba, 'USAGE')
  FROM pg_roles r, pg_class c, pg_database d
 WHERE r.rolname = current_user
   AND c.oid = 'member_keys'::regclass
   AND d.datname = current_database()
