"""The RDF vocabulary the builder understands: which predicates name things, build the hierarchy, or are machinery.

The rule for what is a *fact* (probe material) lives here, as data:

* label predicates (`rdfs:label`, `skos:prefLabel`, `schema:name`, …) give a node its name, alias predicates
  (`skos:altLabel`, …) its aliases; neither is a fact;
* hierarchy predicates (`rdfs:subClassOf`, `skos:broader`, `skos:narrower`, `rdf:type`, a JSON `parent`) build the
  hierarchy *and* are facts when both ends are named nodes and the parent is not a machinery class;
* schema predicates (`owl:inverseOf`, `rdfs:domain`, `rdfs:range`, …) inform relations and are not facts;
* everything else in the RDF, RDFS, OWL, XSD, SHACL namespaces, annotation predicates (comments, definitions, notes,
  Dublin Core metadata) and predicates declared `owl:AnnotationProperty` are machinery, not facts;
* a triple whose subject or object is a blank node (OWL restrictions, lists) or whose subject is a property is
  machinery;
* every other triple with a named subject is a fact, its object a named node or a literal.
"""

from __future__ import annotations

from enum import IntEnum

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
SH = "http://www.w3.org/ns/shacl#"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
FOAF = "http://xmlns.com/foaf/0.1/"
SCHEMA_HTTPS = "https://schema.org/"
SCHEMA_HTTP = "http://schema.org/"
VANN = "http://purl.org/vocab/vann/"
OBO_IN_OWL = "http://www.geneontology.org/formats/oboInOwl#"
PROV = "http://www.w3.org/ns/prov#"
BRICK = "https://brickschema.org/schema/Brick#"

RDF_TYPE = RDF + "type"
RDF_PROPERTY = RDF + "Property"
RDFS_SUBCLASS_OF = RDFS + "subClassOf"
RDFS_LABEL = RDFS + "label"
SKOS_BROADER = SKOS + "broader"
SKOS_NARROWER = SKOS + "narrower"
SKOS_ALT_LABEL = SKOS + "altLabel"
RDF_LANG_STRING = RDF + "langString"
XSD_STRING = XSD + "string"


class Role(IntEnum):
    """What a predicate does for the builder."""

    LABEL = 1
    ALIAS = 2
    SUBCLASS_OF = 3  # child → parent
    BROADER = 4  # child → parent
    NARROWER = 5  # parent → child
    TYPE = 6  # instance → class
    INVERSE_OF = 7
    DOMAIN = 8
    RANGE = 9
    MACHINERY = 10
    SUBPROPERTY_OF = 11  # marks both ends as properties
    EQUIVALENT_CLASS = 12  # C ≡ (B ⊓ …): the named conjuncts are told superclasses of C


# Label predicates, best first: a node's name comes from the best-ranked predicate in the best language.
LABEL_PREDICATES: tuple[str, ...] = (
    SKOS + "prefLabel",
    RDFS_LABEL,
    SCHEMA_HTTPS + "name",
    SCHEMA_HTTP + "name",
    FOAF + "name",
    DCTERMS + "title",
    DC + "title",
)
LABEL_RANK: dict[str, int] = {iri: rank for rank, iri in enumerate(LABEL_PREDICATES)}

ALIAS_PREDICATES: tuple[str, ...] = (
    SKOS_ALT_LABEL,
    SKOS + "hiddenLabel",
    SCHEMA_HTTPS + "alternateName",
    SCHEMA_HTTP + "alternateName",
    OBO_IN_OWL + "hasExactSynonym",
    OBO_IN_OWL + "hasRelatedSynonym",
    OBO_IN_OWL + "hasNarrowSynonym",
    OBO_IN_OWL + "hasBroadSynonym",
    FOAF + "nick",
)

# Namespaces whose predicates are machinery unless listed with a role above or below.
MACHINERY_NAMESPACES: tuple[str, ...] = (RDF, RDFS, OWL, XSD, SH, DC, DCTERMS, VANN, PROV)

# Predicates outside those namespaces that annotate rather than state a fact.
ANNOTATION_PREDICATES: frozenset[str] = frozenset({
    SKOS + "definition", SKOS + "note", SKOS + "scopeNote", SKOS + "example", SKOS + "editorialNote",
    SKOS + "changeNote", SKOS + "historyNote", SKOS + "notation", SKOS + "inScheme", SKOS + "topConceptOf",
    SKOS + "hasTopConcept", SKOS + "member", SKOS + "memberList", SKOS + "exactMatch", SKOS + "closeMatch",
    SKOS + "broadMatch", SKOS + "narrowMatch", SKOS + "relatedMatch", SKOS + "mappingRelation",
    SKOS + "broaderTransitive", SKOS + "narrowerTransitive", SKOS + "semanticRelation",
    SCHEMA_HTTPS + "description", SCHEMA_HTTP + "description", SCHEMA_HTTPS + "url", SCHEMA_HTTP + "url",
    SCHEMA_HTTPS + "image", SCHEMA_HTTP + "image", SCHEMA_HTTPS + "sameAs", SCHEMA_HTTP + "sameAs",
    # schema.org's own vocabulary metadata (where a term was proposed, what replaced it)
    SCHEMA_HTTPS + "source", SCHEMA_HTTP + "source", SCHEMA_HTTPS + "contributor", SCHEMA_HTTP + "contributor",
    SCHEMA_HTTPS + "supersededBy", SCHEMA_HTTP + "supersededBy",
    # Brick's deprecation metadata, the same kind of statement as schema:supersededBy and owl:deprecated: Brick 1.5
    # declares them as datatype/object properties, so without this every deprecated term yielded three junk facts
    # ("… deprecation mitigation message 'Brick location classes are being phased out …'"), 737 in Brick.ttl.
    BRICK + "deprecatedInVersion", BRICK + "deprecationMitigationMessage", BRICK + "deprecationMitigationRule",
    BRICK + "isReplacedBy",
    FOAF + "page", FOAF + "homepage", FOAF + "depiction", FOAF + "isPrimaryTopicOf",
    OBO_IN_OWL + "hasDbXref", OBO_IN_OWL + "id", OBO_IN_OWL + "inSubset", OBO_IN_OWL + "hasOBONamespace",
    OBO_IN_OWL + "creation_date", OBO_IN_OWL + "created_by",
    "http://purl.obolibrary.org/obo/IAO_0000115",  # definition
    "http://purl.obolibrary.org/obo/IAO_0000116",  # editor note
})

SCHEMA_ROLES: dict[str, Role] = {
    RDFS_SUBCLASS_OF: Role.SUBCLASS_OF,
    SKOS_BROADER: Role.BROADER,
    SKOS_NARROWER: Role.NARROWER,
    RDF_TYPE: Role.TYPE,
    OWL + "inverseOf": Role.INVERSE_OF,
    RDFS + "subPropertyOf": Role.SUBPROPERTY_OF,
    OWL + "equivalentClass": Role.EQUIVALENT_CLASS,
    RDFS + "domain": Role.DOMAIN,
    RDFS + "range": Role.RANGE,
    SCHEMA_HTTPS + "domainIncludes": Role.DOMAIN,
    SCHEMA_HTTP + "domainIncludes": Role.DOMAIN,
    SCHEMA_HTTPS + "rangeIncludes": Role.RANGE,
    SCHEMA_HTTP + "rangeIncludes": Role.RANGE,
    SCHEMA_HTTPS + "inverseOf": Role.INVERSE_OF,
    SCHEMA_HTTP + "inverseOf": Role.INVERSE_OF,
}

# rdf:type objects that declare a node to be a property (so it is a relation, not an entity).
PROPERTY_CLASSES: frozenset[str] = frozenset({
    RDF + "Property", OWL + "ObjectProperty", OWL + "DatatypeProperty", OWL + "AnnotationProperty",
    OWL + "TransitiveProperty", OWL + "SymmetricProperty", OWL + "FunctionalProperty",
    OWL + "InverseFunctionalProperty", OWL + "AsymmetricProperty", OWL + "ReflexiveProperty",
    OWL + "IrreflexiveProperty", OWL + "OntologyProperty",
})
ANNOTATION_PROPERTY = OWL + "AnnotationProperty"
# rdf:type objects that mark a node as a document about the KG (its header), whose statements are metadata.
DOCUMENT_CLASSES: frozenset[str] = frozenset({OWL + "Ontology", SKOS + "ConceptScheme"})
SYMMETRIC_PROPERTY = OWL + "SymmetricProperty"

# Classes that say what kind of RDF resource something is, not what it is in the domain.
MACHINERY_CLASS_NAMESPACES: tuple[str, ...] = (RDF, RDFS, OWL, XSD, SH)
MACHINERY_CLASSES: frozenset[str] = frozenset({
    SKOS + "Concept", SKOS + "ConceptScheme", SKOS + "Collection", SKOS + "OrderedCollection",
})

# Relations whose inverse is known from the vocabulary itself.
KNOWN_INVERSES: dict[str, str] = {SKOS_BROADER: SKOS_NARROWER, SKOS_NARROWER: SKOS_BROADER,
                                  SKOS + "related": SKOS + "related"}


# Blank-node structure kept (only) to read class definitions `C owl:equivalentClass [ owl:intersectionOf (B …) ]`.
OWL_INTERSECTION_OF = OWL + "intersectionOf"
RDF_FIRST = RDF + "first"
RDF_REST = RDF + "rest"
CLASS_EXPRESSION_PREDICATES = frozenset({OWL_INTERSECTION_OF, RDF_FIRST, RDF_REST})

# Readable names for the vocabulary's own relations when they are facts.
RELATION_LABELS: dict[str, str] = {
    RDF_TYPE: "instance of",
    RDFS_SUBCLASS_OF: "subclass of",
    SKOS_BROADER: "has broader concept",
    SKOS_NARROWER: "has narrower concept",
    SKOS + "related": "related to",
}


def predicate_role(iri: str) -> Role | None:
    """The role of a predicate, or None when triples with it are candidate facts."""
    role = SCHEMA_ROLES.get(iri)
    if role is not None:
        return role
    if iri in LABEL_RANK:
        return Role.LABEL
    if iri in ALIAS_PREDICATES:
        return Role.ALIAS
    if iri in ANNOTATION_PREDICATES or iri.startswith(MACHINERY_NAMESPACES):
        return Role.MACHINERY
    return None


def is_machinery_class(iri: str) -> bool:
    return iri in MACHINERY_CLASSES or iri.startswith(MACHINERY_CLASS_NAMESPACES)
