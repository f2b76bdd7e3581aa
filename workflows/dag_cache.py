"""Compiled DAGs by workflow id: definitions never change, so each process compiles each once."""

import uuid
from collections import OrderedDict

from workflows import statements
from workflows.bulk_sql import from_db_json
from workflows.dag import Dag, from_definition

DAG_CACHE_SIZE = 512
_dags: OrderedDict = OrderedDict()


def dag_for(workflow_id: uuid.UUID) -> Dag:
    """Compiled DAG of a workflow; definitions never change, so each process compiles once."""
    key = str(workflow_id)
    dag = _dags.get(key)
    if dag is None:
        definition, name = statements.workflow_definition(workflow_id)
        dag = from_definition(from_db_json(definition), name=name)
        remember_dag(key, dag)
    return dag


def remember_dag(workflow_id: uuid.UUID | str, dag: Dag) -> None:
    """Keep a compiled DAG (the API calls this at submit, so trigger needs no reload)."""
    _dags[str(workflow_id)] = dag
    while len(_dags) > DAG_CACHE_SIZE:
        _dags.popitem(last=False)
