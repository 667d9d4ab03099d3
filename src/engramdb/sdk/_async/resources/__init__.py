"""Resource namespaces of the client: one method per API operation, marked with its operation id.

One module per area, as in ``engramdb.services``. Bodies are the API's own Pydantic models: pass one,
or its fields as keywords (validated before sending). List calls return a pager (``AsyncPager``):
iterate it, or ask for one page.
"""

# Re-exported as `X as X` (PEP 484), not through a dunder list: the test of the generated sync code
# takes any `__a…__` name for an async leftover.
from engramdb.sdk._async.resources.agents import Inbox as Inbox
from engramdb.sdk._async.resources.agents import Tasks as Tasks
from engramdb.sdk._async.resources.contexts import Contexts as Contexts
from engramdb.sdk._async.resources.conversation import Messages as Messages
from engramdb.sdk._async.resources.conversation import SessionMessages as SessionMessages
from engramdb.sdk._async.resources.conversation import Sessions as Sessions
from engramdb.sdk._async.resources.core import Audit as Audit
from engramdb.sdk._async.resources.core import Jobs as Jobs
from engramdb.sdk._async.resources.distill import Narratives as Narratives
from engramdb.sdk._async.resources.document import Documents as Documents
from engramdb.sdk._async.resources.document import Repositories as Repositories
from engramdb.sdk._async.resources.governance import Data as Data
from engramdb.sdk._async.resources.governance import Grants as Grants
from engramdb.sdk._async.resources.governance import LegalHolds as LegalHolds
from engramdb.sdk._async.resources.governance import Retention as Retention
from engramdb.sdk._async.resources.graph import Entities as Entities
from engramdb.sdk._async.resources.graph import Facts as Facts
from engramdb.sdk._async.resources.graph import Predicates as Predicates
from engramdb.sdk._async.resources.insights import Insights as Insights
from engramdb.sdk._async.resources.memory import Categories as Categories
from engramdb.sdk._async.resources.memory import Decay as Decay
from engramdb.sdk._async.resources.memory import Memories as Memories
from engramdb.sdk._async.resources.memory import Tags as Tags
from engramdb.sdk._async.resources.tenancy import Agents as Agents
from engramdb.sdk._async.resources.tenancy import Apps as Apps
from engramdb.sdk._async.resources.tenancy import Keys as Keys
from engramdb.sdk._async.resources.tenancy import Limits as Limits
from engramdb.sdk._async.resources.tenancy import Organization as Organization
from engramdb.sdk._async.resources.tenancy import Teams as Teams
from engramdb.sdk._async.resources.tenancy import Users as Users
from engramdb.sdk._async.resources.webhooks import Webhooks as Webhooks
