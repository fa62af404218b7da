"""Synonyms that word vectors miss: MiniLM puts "fix"/"repair" at 0.63 and "help"/"assist" at 0.40, below
"dog"/"cat" (0.66), so no similarity threshold admits them without admitting co-hyponyms.

Groups of words that can replace each other in a question without changing what is asked, written from
general English (a small thesaurus of the verbs, nouns and adjectives questions use), not from any pair set.
Two words are synonyms when some group holds both (groups are not chained: "end" and "finish" share a group,
"end" and "cancel" another, which does not make "finish" and "cancel" synonyms).
"""

from __future__ import annotations

from pilothouse.gateway.cache.contrast_morphology import lemma

_GROUPS_TEXT = """
get obtain acquire receive|buy purchase|make create build generate produce|make prepare cook
show display|remove delete erase|remove uninstall|change modify alter edit update adjust|change switch
fix repair resolve solve troubleshoot|fix correct|start begin commence launch|run execute
stop halt cease|end finish terminate complete conclude|end cancel terminate discontinue|quit exit leave
help assist aid support|find locate|see view look watch|see check|check verify confirm inspect test examine
use utilize employ apply|need require|want wish desire|send transfer transmit|send mail post|book reserve
rent hire|hire employ recruit|ask request inquire enquire|tell inform notify|choose select pick
keep retain preserve maintain|save store keep|increase raise boost grow|decrease reduce lower cut lessen
improve enhance|learn study|teach train educate instruct|understand comprehend grasp|allow permit let enable
prevent avoid stop|treat relieve ease|add insert include append|add invite|connect link pair attach
install setup|configure setup set|close shut|open launch|move transfer migrate relocate shift|copy duplicate clone
convert turn transform change|combine merge join concatenate|split divide separate break|sort order arrange
reverse invert flip|submit send file|pay settle|apply register enroll enrol signup|drop withdraw
memorize memorise learn|mean signify|happen occur|work function operate|break damage|thaw defrost
reheat warm heat|shorten trim cut|accelerate speed quicken|decelerate slow|search look seek|postpone delay defer
complete finish|perform carry|transfer wire|enable activate|disable deactivate|edit revise
write compose draft|explain describe clarify|list enumerate|calculate compute|estimate guess approximate
recommend suggest advise propose|compare contrast|contact reach call|reply respond answer|cost price charge
renew extend|upgrade update|boot start|restart reboot|erase wipe clear|clean wash
store stash|hide conceal|block ban|unblock unban|download fetch get|upload post send|share send forward
print output|read load|fill complete|lose misplace
car automobile vehicle auto|doctor physician doc|medicine medication drug meds|kid child|kids children
price cost fee charge rate|fee charge|salary pay wage wages income earnings|job work position role employment
bill invoice statement|error issue problem bug fault|issue problem trouble|picture photo image pic
film movie|email mail e-mail|phone mobile cellphone smartphone cell|laptop notebook|computer pc machine
app application program software|password passcode passphrase|account profile|shop store|delivery shipping
refund reimbursement repayment|holiday vacation leave|trip journey travel|flat apartment|boss manager supervisor
employee worker staff|parcel package|luggage baggage bag bags|tire tyre|color colour|center centre
meter metre|liter litre|theater theatre|gray grey|defense defence|license licence|program programme
organization organisation|behavior behaviour|favorite favourite|flavor flavour|aluminum aluminium
tutorial guide|guide manual handbook|instructions directions steps|step stage|method way technique approach
option choice alternative|setting option preference|feature function functionality|tool utility|folder directory
file document|document doc|website site|webpage page|link url|internet web online
subscription membership plan|plan tier|customer client|user member|team group|company business firm organisation
organization|meeting appointment|appointment booking reservation|ticket fare|flight plane
hotel accommodation lodging|room accommodation|house home|home residence|rent rental|landlord owner|tenant renter
lease contract agreement|deposit downpayment|savings saving|money cash funds
dollar buck|symptom sign|illness sickness disease condition|pain ache|stomach belly tummy|tablet pill|dose dosage
exam test examination|course class|teacher instructor tutor|student pupil learner|homework assignment|grade mark score
workout exercise training|weight mass|ingredient component
big large huge|small little tiny|fast quick rapid speedy|cheap inexpensive affordable|expensive costly pricey
easy simple straightforward|hard difficult tough challenging|safe secure|dangerous unsafe risky hazardous
correct right accurate|wrong incorrect|free complimentary|whole entire full|main primary principal|latest newest recent
usual common typical normal standard|normal typical regular|contagious infectious|loud noisy
quiet silent|rich wealthy|sick ill unwell|healthy fit|tired exhausted|angry mad|happy glad
smart intelligent clever|stupid dumb|old elderly aged|old previous former|new fresh|new recent|good decent fine
good great excellent|best top|bad poor|ideal perfect optimal|possible feasible|impossible unfeasible
permanent lasting|quickly fast rapidly|slowly gradually|often frequently
usually typically normally|mostly mainly largely|maybe perhaps possibly
nearby near close|far distant|enough sufficient adequate|needed necessary required
"""


def _pairs() -> frozenset[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for group in _GROUPS_TEXT.replace("\n", "|").split("|"):
        keys = {lemma(w) for w in group.split()}
        pairs.update((a, b) for a in keys for b in keys if a != b)
    return frozenset(pairs)


SYNONYM_PAIRS = _pairs()


def synonyms(a: str, b: str) -> bool:
    """`a` and `b` (lemmas) share a synonym group."""
    return (a, b) in SYNONYM_PAIRS
