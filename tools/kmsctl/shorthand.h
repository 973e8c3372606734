/* The aws CLI's shorthand syntax for nested structures, for kmsctl's JSON options:
 * key=value,key2={k=v,k3=[a,b]},key4=[{k=v},{k=w}]: a structure of members, each a scalar, a
 * nested structure in braces or a list in brackets; a scalar may be quoted ("a,b" or 'a,b').
 * Without the service model the aws CLI uses, a scalar is true/false, a whole number, or text;
 * the members of an encryption context (EncryptionContext*) stay text. */
#ifndef KMSCTL_SHORTHAND_H
#define KMSCTL_SHORTHAND_H

#include <jansson.h>

/* The JSON object text stands for (a new reference), or NULL with *why (what is wrong) and *at
 * (where, inside text) set. Nesting deeper than 32 levels is refused. */
json_t *kmsctl_shorthand_parse(const char *text, const char **why, const char **at);

#endif
